#[test]
fn has_a_name() {
    assert_eq!(greetings::name(), "world");
}
