use super::*;
use crate::message::parse_message;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn feed<'a>(
    conn: &mut Connection<u32>,
    bytes: &'a [u8],
    out: &mut BytesMut,
) -> Result<Routed<'a, u32>, Error> {
    let (msg, _) = parse_message(bytes).unwrap().unwrap();
    conn.process(msg, out)
}

fn ready_connection() -> Connection<u32> {
    let mut conn = Connection::new(StartupParams {
        user: "u".into(),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    conn.start(&mut out).unwrap();
    assert!(!out.is_empty());
    let ok = frame(b'R', &0i32.to_be_bytes());
    assert!(matches!(
        feed(&mut conn, &ok, &mut out),
        Ok(Routed::Handled)
    ));
    let mut key = 42i32.to_be_bytes().to_vec();
    key.extend_from_slice(&7i32.to_be_bytes());
    feed(&mut conn, &frame(b'K', &key), &mut out).unwrap();
    feed(
        &mut conn,
        &frame(b'S', b"server_version\x0015.1\x00"),
        &mut out,
    )
    .unwrap();
    assert!(matches!(
        feed(&mut conn, &frame(b'Z', b"I"), &mut out),
        Ok(Routed::StartupDone)
    ));
    conn
}

#[test]
fn startup_records_key_and_parameters() {
    let conn = ready_connection();
    assert_eq!(conn.phase(), Phase::Ready);
    assert_eq!(conn.process_id(), 42);
    assert_eq!(conn.parameter("server_version"), Some("15.1"));
}

#[test]
fn password_request_without_password_sends_an_empty_one() {
    let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    let mut out = BytesMut::new();
    let req = frame(b'R', &3i32.to_be_bytes());
    assert!(matches!(
        feed(&mut conn, &req, &mut out),
        Ok(Routed::Handled)
    ));
    assert_eq!(&out[..], b"p\0\0\0\x05\0");
}

#[test]
fn gss_is_refused() {
    let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    let mut out = BytesMut::new();
    let req = frame(b'R', &7i32.to_be_bytes());
    assert!(matches!(
        feed(&mut conn, &req, &mut out),
        Err(Error::Auth(_))
    ));
}

#[test]
fn md5_request_writes_a_password_message() {
    let mut conn: Connection<u32> = Connection::new(StartupParams {
        user: "u".into(),
        password: Some("p".into()),
        ..Default::default()
    });
    let mut out = BytesMut::new();
    let mut body = 5i32.to_be_bytes().to_vec();
    body.extend_from_slice(&[1, 2, 3, 4]);
    feed(&mut conn, &frame(b'R', &body), &mut out).unwrap();
    assert_eq!(out[0], b'p');
}

#[test]
fn ready_for_query_before_authentication_is_rejected() {
    let mut conn: Connection<u32> = Connection::new(StartupParams::default());
    let mut out = BytesMut::new();
    assert!(feed(&mut conn, &frame(b'Z', b"I"), &mut out).is_err());
}

#[test]
fn operations_complete_in_order() {
    let mut conn = ready_connection();
    let mut out = BytesMut::new();
    conn.push(1);
    conn.push(2);
    assert!(matches!(
        feed(&mut conn, &frame(b'1', b""), &mut out),
        Ok(Routed::Op(Message::ParseComplete))
    ));
    assert_eq!(conn.head_mut(), Some(&mut 1));
    assert!(matches!(
        feed(&mut conn, &frame(b'Z', b"T"), &mut out),
        Ok(Routed::OpDone(1))
    ));
    assert_eq!(conn.transaction_status(), TransactionStatus::InTransaction);
    let err = frame(b'E', b"SERROR\0C42601\0Mbad\0\0");
    assert!(matches!(
        feed(&mut conn, &err, &mut out),
        Ok(Routed::Op(Message::ErrorResponse(_)))
    ));
    assert!(matches!(
        feed(&mut conn, &frame(b'Z', b"E"), &mut out),
        Ok(Routed::OpDone(2))
    ));
    assert!(feed(&mut conn, &frame(b'Z', b"I"), &mut out).is_err());
}

#[test]
fn unsolicited_fatal_closes() {
    let mut conn = ready_connection();
    let mut out = BytesMut::new();
    let err = frame(b'E', b"SFATAL\0VFATAL\0C57P01\0Mterminating\0\0");
    assert!(matches!(
        feed(&mut conn, &err, &mut out),
        Ok(Routed::UnsolicitedError(_))
    ));
    assert_eq!(conn.phase(), Phase::Closed);
}
