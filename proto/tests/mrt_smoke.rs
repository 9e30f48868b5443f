mod support;

use anyvip_proto::{Context, Message};

#[test]
fn every_update_in_the_ris_file_frames_and_decodes() {
    let Some(dir) = support::testdata_dir() else {
        return;
    };
    let records = support::mrt::read(&dir.join("ris/updates.20160811.1600.gz"));
    let mut updates = 0;
    for r in &records {
        let ctx = if r.four_octet_as {
            Context::FOUR_OCTET_AS
        } else {
            Context::TWO_OCTET_AS
        };
        let (m, used) = Message::decode_from(&r.message, &ctx).unwrap().unwrap();
        assert_eq!(used, r.message.len());
        if let Message::Update(u) = m {
            assert!(u.errors.is_empty(), "{:?}", u.errors);
            updates += 1;
        }
    }
    assert_eq!(updates, 17_216);
}
