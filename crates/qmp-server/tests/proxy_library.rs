//! The proxy and replay as a library (`qmp_server::proxy`, `qmp_server::replay`), in-process,
//! in front of a real QEMU, with the project's client on top.

use std::time::Duration;

use qmp_server::proxy::{Listen, Policy, Proxy, Recorder};
use qmp_server::replay::{Recording, Replay};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_proxy_records_and_its_record_replays() {
    let peer = qmp_testkit::Peer::qemu(1);
    let dir = qmp_testkit::tempdir();
    let (full, ro, rec) =
        (dir.path().join("full.sock"), dir.path().join("ro.sock"), dir.path().join("rec.jsonl"));
    let address = qmp::Address::Unix(peer.socket(0).to_owned());
    let bound = Proxy::connect(&address)
        .await
        .unwrap()
        .listen(Listen::new(&full))
        .listen(Listen::new(&ro).policy(Policy::read_only().allow("qom-*")))
        .record(Recorder::create(&rec).unwrap())
        .bind()
        .unwrap();
    let serving = tokio::spawn(bound.serve());

    let script = |path: std::path::PathBuf| async move {
        let c = qmp::Client::connect(path.as_path()).await.unwrap();
        let stopped = c.wait_for(qmp::EventFilter::name("STOP"), Duration::from_secs(5));
        let a = c.call_raw("stop", ()).send().await.unwrap();
        let ev = stopped.await.unwrap();
        let b = c.call_raw("query-status", ()).send().await.unwrap();
        let e = c.call_raw("device_del", json!({"id": "nodev"})).send().await.unwrap_err();
        let d = c.call_raw("cont", ()).send().await.unwrap();
        (a, ev.name.clone(), b, e.to_string(), d)
    };
    let live = script(full.clone()).await;
    assert_eq!(live.1, "STOP");
    assert_eq!(live.2["status"], "paused");

    let reader = qmp::Client::connect(ro.as_path()).await.unwrap();
    let refused = reader.call_raw("stop", ()).send().await.unwrap_err();
    assert!(refused.to_string().contains("refused by the QMP proxy's policy"), "{refused}");
    reader.call_raw("qom-list", json!({"path": "/"})).send().await.unwrap();

    // QEMU goes: the proxy's serve() ends and its clients are disconnected.
    drop(peer);
    tokio::time::timeout(Duration::from_secs(2), serving).await.expect("serve ends").unwrap();
    tokio::time::timeout(Duration::from_secs(2), reader.closed()).await.expect("client disconnected");

    // The record replays: the same script gets the same answers and event.
    let recording = Recording::load(&rec).unwrap();
    // The script's 4 requests and qom-list; negotiation and the refused stop never went upstream.
    assert_eq!(recording.len(), 5);
    let rsock = dir.path().join("replay.sock");
    let server = Replay::new(recording).bind(&rsock).unwrap();
    tokio::spawn(server.serve());
    let replayed = script(rsock).await;
    assert_eq!(replayed, live);
}
