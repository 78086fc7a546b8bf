//! Malformed, truncated and oversized frames: the offending connection gets
//! an error or is closed, the server keeps serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, put_request};
use cairn_net::codec::encode_request;
use cairn_net::frame::{encode_frame, parse_head, Head, HEADER_LEN};
use cairn_schemas::rpc;

fn raw(node: &TestNode) -> TcpStream {
    let s = TcpStream::connect(node.endpoint()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// Reads one response frame: (request id, decoded body).
fn read_response(s: &mut TcpStream) -> Option<(u64, rpc::ResponseBodyT)> {
    let mut head = [0u8; HEADER_LEN];
    s.read_exact(&mut head).ok()?;
    let Head::Frame {
        request_id,
        payload_len,
    } = parse_head(&head)
    else {
        panic!("bad frame from server")
    };
    let mut payload = vec![0u8; payload_len];
    s.read_exact(&mut payload).unwrap();
    let resp = cairn_schemas::verify_response(&payload).expect("server sends valid responses");
    Some((request_id, resp.unpack().body))
}

fn is_closed(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0) | Err(_))
}

fn error_code(body: &rpc::ResponseBodyT) -> rpc::ErrorCode {
    match body {
        rpc::ResponseBodyT::Error(e) => e.code,
        other => panic!("expected an error, got {other:?}"),
    }
}

fn server_still_serves(node: &TestNode) {
    let c = node.client();
    c.put(put_request(b"alive", b"yes")).unwrap();
    assert_eq!(c.range(get_request(b"alive")).unwrap().count, 1);
}

#[test]
fn garbage_stream_closes_only_that_connection() {
    let node = TestNode::start();
    let bystander = node.client();
    let mut s = raw(&node);
    // A length below the minimum.
    s.write_all(&[1, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
        .unwrap();
    assert!(is_closed(&mut s));
    // Random bytes claiming an absurd length.
    let mut s = raw(&node);
    s.write_all(&[0xff; 64]).unwrap();
    let _ = read_response(&mut s);
    assert!(is_closed(&mut s));
    bystander.put(put_request(b"k", b"v")).unwrap();
    server_still_serves(&node);
}

#[test]
fn invalid_flatbuffer_gets_an_error_then_close() {
    let node = TestNode::start();
    let mut s = raw(&node);
    let mut frame = Vec::new();
    encode_frame(
        &mut frame,
        7,
        &[0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    s.write_all(&frame).unwrap();
    let (id, body) = read_response(&mut s).expect("an error response");
    assert_eq!(id, 7);
    assert_eq!(error_code(&body), rpc::ErrorCode::InvalidArgument);
    assert!(is_closed(&mut s));
    server_still_serves(&node);
}

#[test]
fn oversized_frame_gets_request_too_large_and_connection_goes_on() {
    let node = TestNode::start_with(&["--max-request-bytes", "4096"]);
    let mut s = raw(&node);
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let big = encode_request(
        &mut b,
        &rpc::RequestBodyT::PutRequest(Box::new(put_request(b"k", &[7u8; 10000]))),
    )
    .to_vec();
    let mut frame = Vec::new();
    encode_frame(&mut frame, 1, &big);
    let small = encode_request(
        &mut b,
        &rpc::RequestBodyT::RangeRequest(Box::new(get_request(b"k"))),
    )
    .to_vec();
    encode_frame(&mut frame, 2, &small);
    s.write_all(&frame).unwrap();
    let (id, body) = read_response(&mut s).unwrap();
    assert_eq!(id, 1);
    assert_eq!(error_code(&body), rpc::ErrorCode::RequestTooLarge);
    let (id, body) = read_response(&mut s).unwrap();
    assert_eq!(id, 2);
    assert!(matches!(body, rpc::ResponseBodyT::RangeResponse(_)));
    // The oversized put did not apply.
    assert_eq!(node.client().range(get_request(b"k")).unwrap().count, 0);
}

#[test]
fn truncated_frame_then_disconnect_is_harmless() {
    let node = TestNode::start();
    for cut in [3usize, 11, 20] {
        let mut s = raw(&node);
        let mut b = flatbuffers::FlatBufferBuilder::new();
        let p = encode_request(
            &mut b,
            &rpc::RequestBodyT::PutRequest(Box::new(put_request(b"t", b"v"))),
        )
        .to_vec();
        let mut frame = Vec::new();
        encode_frame(&mut frame, 1, &p);
        s.write_all(&frame[..cut]).unwrap();
        drop(s);
    }
    server_still_serves(&node);
    assert_eq!(node.client().range(get_request(b"t")).unwrap().count, 0);
}

#[test]
fn empty_request_body_is_an_error() {
    let node = TestNode::start();
    let mut s = raw(&node);
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let p = encode_request(&mut b, &rpc::RequestBodyT::NONE).to_vec();
    let mut frame = Vec::new();
    encode_frame(&mut frame, 5, &p);
    s.write_all(&frame).unwrap();
    let (_, body) = read_response(&mut s).unwrap();
    assert_eq!(error_code(&body), rpc::ErrorCode::InvalidArgument);
}

#[test]
fn pipelined_requests_on_one_connection_all_complete() {
    let node = TestNode::start();
    let mut s = raw(&node);
    let mut b = flatbuffers::FlatBufferBuilder::new();
    let mut frames = Vec::new();
    for i in 0..200u64 {
        let body = if i % 2 == 0 {
            rpc::RequestBodyT::PutRequest(Box::new(put_request(format!("p{i}").as_bytes(), b"v")))
        } else {
            rpc::RequestBodyT::RangeRequest(Box::new(get_request(b"p0")))
        };
        let p = encode_request(&mut b, &body).to_vec();
        encode_frame(&mut frames, 1000 + i, &p);
    }
    s.write_all(&frames).unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let (id, body) = read_response(&mut s).unwrap();
        assert!(!matches!(body, rpc::ResponseBodyT::Error(_)));
        assert!(seen.insert(id));
    }
    assert_eq!(seen.len(), 200);
}

/// More requests in flight than the per-connection limit: the server stops
/// reading until responses go out, and every request is answered.
#[test]
fn pipelining_past_the_inflight_limit_completes() {
    let node = TestNode::start();
    let s = raw(&node);
    let mut w = s.try_clone().unwrap();
    let n = 3 * cairn_net::server::MAX_INFLIGHT_PER_CONNECTION as u64;
    let writer = std::thread::spawn(move || {
        let mut b = flatbuffers::FlatBufferBuilder::new();
        let mut frames = Vec::new();
        for i in 0..n {
            let body = rpc::RequestBodyT::PutRequest(Box::new(put_request(
                format!("f{}", i % 100).as_bytes(),
                b"v",
            )));
            let p = encode_request(&mut b, &body).to_vec();
            encode_frame(&mut frames, i, &p);
        }
        w.write_all(&frames).unwrap();
    });
    let mut s = s;
    let mut seen = std::collections::HashSet::new();
    for _ in 0..n {
        let (id, body) = read_response(&mut s).expect("every request is answered");
        assert!(
            matches!(body, rpc::ResponseBodyT::PutResponse(_)),
            "{body:?}"
        );
        seen.insert(id);
    }
    writer.join().unwrap();
    assert_eq!(seen.len() as u64, n);
}
