//! The client stub against a real node: the async client pipelines many
//! tasks over one connection; timeouts and connection failures are typed.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use cairn_core::testkit::TestNode;
use cairn_net::client::{get_request, put_request};
use cairn_net::{AsyncClient, BlockingClient, ClientError, ClientOptions};

#[test]
fn async_client_pipelines_many_tasks_on_one_connection() {
    let node = TestNode::start();
    let addr: SocketAddr = node.endpoint().parse().unwrap();
    let ops = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move {
            let client = AsyncClient::connect(&[addr], ClientOptions::default())
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for t in 0..32 {
                let c = client.clone();
                tasks.push(glommio::spawn_local(async move {
                    for i in 0..20 {
                        let k = format!("t{t}/{i}");
                        c.put(put_request(k.as_bytes(), b"v")).await.unwrap();
                        let r = c.range(get_request(k.as_bytes())).await.unwrap();
                        assert_eq!(r.count, 1);
                    }
                    40
                }));
            }
            let mut n = 0;
            for t in tasks {
                n += t.await;
            }
            n
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(ops, 32 * 40);
    let c = node.client();
    // Every put made one revision (the store starts at revision 1).
    assert_eq!(c.status().unwrap().header.unwrap().revision, 1 + 32 * 20);
}

#[test]
fn blocking_client_is_shared_by_threads() {
    let node = TestNode::start();
    let c = node.client();
    std::thread::scope(|s| {
        for t in 0..8 {
            let c = &c;
            s.spawn(move || {
                for i in 0..25 {
                    c.put(put_request(format!("{t}-{i}").as_bytes(), b"x"))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(c.status().unwrap().header.unwrap().revision, 1 + 200);
}

#[test]
fn request_timeout_is_a_typed_error() {
    // A listener that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let c = BlockingClient::connect(&[addr], opts).unwrap();
    let start = Instant::now();
    let e = c.range(get_request(b"k")).unwrap_err();
    assert!(matches!(e, ClientError::Timeout), "{e:?}");
    assert!(start.elapsed() < Duration::from_secs(3));
}

#[test]
fn connect_failure_names_the_endpoints() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let e = BlockingClient::connect(&[addr], ClientOptions::default())
        .err()
        .expect("nothing listens there");
    assert!(matches!(e, ClientError::Connect { .. }), "{e:?}");
    assert!(e.to_string().contains(&port.to_string()));
}

#[test]
fn server_gone_fails_in_flight_and_later_requests() {
    let mut node = TestNode::start();
    let c = node.client();
    c.put(put_request(b"a", b"1")).unwrap();
    node.kill9();
    let e = c.put(put_request(b"b", b"2")).unwrap_err();
    assert!(
        matches!(e, ClientError::Closed(_) | ClientError::Timeout),
        "{e:?}"
    );
}

#[test]
fn async_request_timeout_is_a_typed_error() {
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let (err, took) = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .io_memory(1 << 20)
        .spawn(move || async move {
            let opts = ClientOptions {
                request_timeout: Duration::from_millis(300),
                ..Default::default()
            };
            let c = AsyncClient::connect(&[addr], opts).await.unwrap();
            let start = Instant::now();
            let e = c.range(get_request(b"k")).await.unwrap_err();
            (e, start.elapsed())
        })
        .unwrap()
        .join()
        .unwrap();
    assert!(matches!(err, ClientError::Timeout), "{err:?}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    drop(silent);
}
