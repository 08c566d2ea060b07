use super::*;

#[test]
fn a_bucket_word_holds_its_tag_and_a_signed_48_bit_amount() {
    let limit = 1i64 << 47;
    for amount in [0, 1, -1, 1_000_000, -1_000_000, limit - 1, -limit] {
        for tag in [0, 1, 0x7fff, 0xffff] {
            let word = Slot::pack(tag, amount).unwrap();
            assert_eq!(Slot::unpack(word), Slot { tag, amount });
        }
    }
    assert_eq!(Slot::pack(0, limit), None);
    assert_eq!(Slot::pack(0, -limit - 1), None);
    assert_eq!(Slot::age(5, 5), Age::Same);
    assert_eq!(Slot::age(5, 4), Age::Older);
    assert_eq!(Slot::age(2, 0xfffe), Age::Older);
    assert_eq!(Slot::age(4, 5), Age::Newer);
    // Exact for epochs less than 2¹⁵ buckets apart: from there on, newer.
    assert_eq!(Slot::age((1 << 15) - 1, 0), Age::Older);
    assert_eq!(Slot::age(1 << 15, 0), Age::Newer);
}
