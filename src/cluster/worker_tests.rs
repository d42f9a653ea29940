//! Unit tests of the cluster worker's bookkeeping (no server needed).

use super::*;
use crate::cluster::schema::KeyspaceInfo;
use crate::cluster::topology::PeerInfo;
use crate::protocol::tablets_payload::TabletRoutingInfo;
use crate::routing::replication::ReplicationStrategy;
use crate::routing::token::Token;

fn peer(i: u8) -> PeerInfo {
    PeerInfo {
        host_id: [i; 16],
        // Nothing listens on port 1: the pools just keep retrying.
        address: SocketAddr::new([127, 0, 0, i].into(), 1),
        datacenter: "dc1".into(),
        rack: "r1".into(),
        tokens: vec![Token::new(i64::from(i) * 100)],
    }
}

fn metadata(nodes: &[u8], tablet_keyspace: bool) -> Metadata {
    let mut keyspaces = HashMap::new();
    keyspaces.insert(
        "tks".to_owned(),
        KeyspaceInfo {
            strategy: ReplicationStrategy::NetworkTopology {
                per_dc: vec![("dc1".into(), 1)],
            },
            uses_tablets: tablet_keyspace,
            schema: Default::default(),
        },
    );
    Metadata {
        nodes: nodes.iter().map(|&i| peer(i)).collect(),
        keyspaces,
    }
}

#[tokio::test]
async fn nodes_keep_gain_and_lose_pools_and_status() {
    let shared = Arc::new(Shared {
        state: ArcSwap::from_pointee(ClusterState::empty()),
        tablets: Arc::new(TabletMap::new()),
        events: tokio::sync::broadcast::channel(1).0,
    });
    let (_tx, rx) = mpsc::unbounded_channel();
    let mut config = ClusterConfig::new(Vec::new());
    config.pool.connection.connect_timeout = Duration::from_millis(50);
    let mut worker = Worker {
        shared: shared.clone(),
        config,
        control: None,
        events: None,
        runtimes: HashMap::new(),
        keyspace: Arc::new(Mutex::new(None)),
        generation: 0,
        commands: rx,
    };
    worker.apply(metadata(&[1, 2], true), true).await;
    let first = shared.state.load_full();
    assert_eq!(first.nodes().len(), 2);
    let kept = first.nodes()[0].runtime().unwrap().clone();

    // STATUS_CHANGE DOWN marks node 1 down without a refresh.
    let down = Event::StatusChange {
        change: "DOWN".into(),
        address: SocketAddr::new([127, 0, 0, 1].into(), 9042),
    };
    assert!(!worker.on_event(down));
    assert!(!shared.state.load().nodes()[0].up);

    // Node 2 leaves, node 3 joins; node 1 keeps its pool and status.
    shared.tablets.record(
        "tks",
        "t",
        &TabletRoutingInfo {
            first_token: 0,
            last_token: 10,
            replicas: vec![([1; 16], 0)],
        },
    );
    worker.apply(metadata(&[1, 3], true), false).await;
    let second = shared.state.load_full();
    assert!(second.generation() > first.generation());
    assert!(Arc::ptr_eq(second.nodes()[0].runtime().unwrap(), &kept));
    assert!(!second.nodes()[0].up);
    assert!(second.nodes()[1].up);
    assert_eq!(worker.runtimes.len(), 2);
    assert!(!worker.runtimes.contains_key(&[2; 16]));
    assert!(worker.runtimes.contains_key(&[3; 16]));
    assert_eq!(shared.tablets.stats().tables, 1);

    // After a reconnect every node is trusted again; a keyspace that
    // stopped using tablets loses its tablets.
    worker.apply(metadata(&[1, 3], false), true).await;
    assert!(shared.state.load().nodes().iter().all(|n| n.up));
    assert_eq!(shared.tablets.stats().tables, 0);

    worker.shutdown().await;
    assert!(worker.runtimes.is_empty());
}
