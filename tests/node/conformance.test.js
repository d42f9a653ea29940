'use strict';
// Conformance of scylla-emulator with the DataStax Node.js driver
// (cassandra-driver, pinned in package.json): what the driver sees of the
// cluster (topology, token ring, schema) and of the data (every type through
// prepared statements, paging, batches, LWT, errors, tracing, warnings,
// functions, JSON), checked against the emulator's own counters, plus a node
// restart. Each group starts its own emulator and stops it by its pid.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const cassandra = require('cassandra-driver');
const { Emulator, hostIdOf, waitUntil } = require('./emulator');

const { types } = cassandra;
const { Long, Uuid, TimeUuid, BigDecimal, Integer, InetAddress, LocalDate, LocalTime, Duration, Tuple } = types;
const SIMPLE_RF1 = "{'class': 'SimpleStrategy', 'replication_factor': 1}";
const MURMUR3 = 'org.apache.cassandra.dht.Murmur3Partitioner';

function connect(emu, options = {}) {
  return new cassandra.Client({
    contactPoints: [emu.ip(0)],
    localDataCenter: 'datacenter1',
    protocolOptions: { port: emu.port },
    socketOptions: { readTimeout: 20000 },
    ...options,
  });
}

/** Composite routing key: [u16 length][bytes][0x00] per component. */
function compositeKey(...parts) {
  return Buffer.concat(parts.flatMap((p) => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    return [len, p, Buffer.from([0])];
  }));
}

function intBytes(v) {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
}

async function expectError(promise, code, messagePart) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof cassandra.errors.ResponseError, `not a server error: ${e}`);
    assert.equal(e.code, code, e.message);
    if (messagePart !== undefined) {
      assert.ok(e.message.includes(messagePart), `"${e.message}" lacks "${messagePart}"`);
    }
    return true;
  });
}

const codes = types.responseErrorCodes;

describe('topology, token ring, routing and data (3 nodes x 4 shards)', () => {
  let emu;
  let client;

  before(async () => {
    emu = await new Emulator(3, 4, ['--racks', '2', '--vnodes', '8']).start();
    client = connect(emu);
    await client.connect();
    await client.execute(`CREATE KEYSPACE ks WITH replication = ${SIMPLE_RF1}`);
    await client.execute('CREATE TABLE ks.kv (a int, b text, c int, v text, PRIMARY KEY ((a, b), c))');
  });

  after(async () => {
    if (client) await client.shutdown();
    if (emu) await emu.stop();
  });

  it('discovers every node with its datacenter, rack, host id and tokens', () => {
    const hosts = [...client.hosts.values()].sort((x, y) => x.address.localeCompare(y.address, 'en', { numeric: true }));
    assert.deepEqual(hosts.map((h) => h.address), emu.ips.map((ip) => `${ip}:${emu.port}`));
    hosts.forEach((h, i) => {
      assert.equal(h.datacenter, 'datacenter1');
      assert.equal(h.rack, `rack${(i % 2) + 1}`);
      assert.equal(h.hostId.toString(), hostIdOf(i));
      assert.equal(h.tokens.length, 8);
      assert.ok(h.isUp());
      assert.equal(h.cassandraVersion, '3.0.8');
    });
    assert.equal(client.controlConnection.protocolVersion, 4);
    assert.equal(client.metadata.tokenizer.constructor.name, 'Murmur3Tokenizer');
    // The ring: every vnode token once, each node owning 8.
    assert.equal(client.metadata.ring.length, 24);
    const owners = {};
    for (const token of client.metadata.ringTokensAsStrings) {
      const host = client.metadata.primaryReplicas[token];
      owners[host.address] = (owners[host.address] || 0) + 1;
    }
    assert.deepEqual(Object.values(owners), [8, 8, 8]);
    for (const ks of ['system', 'system_schema', 'system_traces', 'ks']) {
      assert.ok(client.metadata.keyspaces[ks], `keyspace ${ks} in metadata`);
    }
  });

  it('each node describes itself and its peers consistently', async () => {
    for (const host of client.hosts.values()) {
      const ip = host.address.split(':')[0];
      const i = emu.ips.indexOf(ip);
      const local = (await client.execute(
        "SELECT host_id, rpc_address, rack, tokens, partitioner, cluster_name FROM system.local WHERE key='local'",
        [], { host })).first();
      assert.equal(local.host_id.toString(), hostIdOf(i));
      assert.equal(local.rpc_address.toString(), ip);
      assert.equal(local.rack, host.rack);
      assert.equal(local.tokens.length, 8);
      assert.equal(local.partitioner, MURMUR3);
      assert.equal(local.cluster_name, 'emulated cluster');
      const peers = (await client.execute('SELECT peer, host_id, rpc_address FROM system.peers', [], { host })).rows;
      assert.deepEqual(peers.map((p) => p.rpc_address.toString()).sort(), emu.ips.filter((x) => x !== ip).sort());
    }
  });

  it('routes prepared statements to the replica: zero node misroutes, counted truthfully', async () => {
    const ins = 'INSERT INTO ks.kv (a, b, c, v) VALUES (?, ?, ?, ?)';
    const sel = 'SELECT v FROM ks.kv WHERE a = ? AND b = ? AND c = ?';
    const rows = Array.from({ length: 600 }, (_, i) => [i * 7919 - 2000000, `b${i % 13}`, i % 5, `v${i}`]);
    const before = await emu.snapshot();
    for (const r of rows) await client.execute(ins, r, { prepare: true });
    for (const [a, b, c, v] of rows) {
      const row = (await client.execute(sel, [a, b, c], { prepare: true })).first();
      assert.equal(row.v, v);
    }
    const d = (await emu.snapshot()).minus(before).routing();
    assert.ok(d.routable >= 1200, JSON.stringify(d));
    assert.equal(d.misroutedNode, 0, JSON.stringify(d));
    // The driver's replica is the emulator's: sending elsewhere is counted.
    const hosts = client.hosts.values();
    const wrong = await emu.snapshot();
    for (const [a, b, c] of rows.slice(0, 30)) {
      const replicas = client.metadata.getReplicas('ks', compositeKey(intBytes(a), Buffer.from(b)));
      assert.equal(replicas.length, 1);
      const other = hosts.find((h) => h !== replicas[0]);
      await client.execute(sel, [a, b, c], { prepare: true, host: other });
    }
    const w = (await emu.snapshot()).minus(wrong).routing();
    assert.equal(w.misroutedNode, 30, JSON.stringify(w));
  });

  it('pages a large partition (automatic, manual page state, eachRow, stream)', async () => {
    const ins = 'INSERT INTO ks.kv (a, b, c, v) VALUES (42, \'big\', ?, ?)';
    const n = 1200;
    const order = Array.from({ length: n }, (_, i) => (i * 7) % n);
    await cassandra.concurrent.executeConcurrent(client, ins, order.map((c) => [c, `val-${c}`]), { concurrencyLevel: 64 });
    const sel = "SELECT c, v FROM ks.kv WHERE a = 42 AND b = 'big'";
    const first = await client.execute(sel, [], { prepare: true, fetchSize: 100 });
    assert.equal(first.rows.length, 100);
    assert.ok(first.pageState, 'a page state for the next page');
    const seen = [];
    let pageState;
    let pages = 0;
    do {
      const page = await client.execute(sel, [], { prepare: true, fetchSize: 100, pageState });
      seen.push(...page.rows.map((r) => r.c));
      pageState = page.pageState;
      pages += 1;
      assert.ok(pages <= 20, 'paging terminates');
    } while (pageState);
    assert.deepEqual(seen, Array.from({ length: n }, (_, i) => i));
    // 12 full pages; like Scylla, a full last page may still carry a page
    // state, and the page after it is empty.
    assert.ok(pages === 12 || pages === 13, `${pages} pages`);
    const viaEachRow = await new Promise((resolve, reject) => {
      const got = [];
      client.eachRow(sel, [], { prepare: true, fetchSize: 250, autoPage: true },
        (_, row) => got.push(row.c), (err) => (err ? reject(err) : resolve(got)));
    });
    assert.equal(viaEachRow.length, n);
    const viaStream = [];
    for await (const row of client.stream(`${sel} AND c >= 1000`, [], { prepare: true, fetchSize: 50 })) {
      viaStream.push(row.c);
    }
    assert.deepEqual(viaStream, Array.from({ length: 200 }, (_, i) => 1000 + i));
    const limited = await client.execute(`${sel} LIMIT 333`, [], { fetchSize: 100 });
    assert.equal(limited.rows.length, 100);
  });

  it('runs logged, unlogged and counter batches, and warns on large ones', async () => {
    const ins = 'INSERT INTO ks.kv (a, b, c, v) VALUES (?, ?, ?, ?)';
    const logged = Array.from({ length: 40 }, (_, c) => ({ query: ins, params: [1, 'x', c, `logged-${c}`] }));
    logged.push({ query: "INSERT INTO ks.kv (a, b, c, v) VALUES (1, 'x', 40, 'simple')" });
    await client.batch(logged, { prepare: true });
    const got = (await client.execute("SELECT c, v FROM ks.kv WHERE a = 1 AND b = 'x'")).rows;
    assert.equal(got.length, 41);
    assert.equal(got[40].v, 'simple');
    const unlogged = Array.from({ length: 20 }, (_, a) => ({ query: ins, params: [a, 'u', 0, `u-${a}`] }));
    await client.batch(unlogged, { prepare: true, logged: false });
    for (let a = 0; a < 20; a++) {
      const row = (await client.execute("SELECT v FROM ks.kv WHERE a = ? AND b = 'u' AND c = 0", [a], { prepare: true })).first();
      assert.equal(row.v, `u-${a}`);
    }
    await client.execute('CREATE TABLE ks.cnt (k int PRIMARY KEY, n counter)');
    const upd = 'UPDATE ks.cnt SET n = n + ? WHERE k = ?';
    const counter = Array.from({ length: 5 }, (_, k) => ({ query: upd, params: [Long.fromNumber(k + 1), k] }));
    await client.batch(counter, { prepare: true, counter: true });
    await client.batch(counter, { prepare: true, counter: true });
    for (let k = 0; k < 5; k++) {
      const row = (await client.execute('SELECT n FROM ks.cnt WHERE k = ?', [k], { prepare: true })).first();
      assert.ok(row.n.equals(Long.fromNumber(2 * (k + 1))));
    }
    // Past 128 KiB over several partitions: Scylla's guardrail warning.
    await client.execute('CREATE TABLE ks.blobs (k int PRIMARY KEY, v blob)');
    const big = [0, 1, 2].map((k) => ({ query: 'INSERT INTO ks.blobs (k, v) VALUES (?, ?)', params: [k, Buffer.alloc(50000, 7)] }));
    const warned = await client.batch(big, { prepare: true, logged: false });
    assert.deepEqual(warned.info.warnings, [
      'Unlogged batch modifying 3 partitions in ks.blobs is of size 150012 bytes, exceeding specified WARN threshold of 131072 by 18940.',
    ]);
    const huge = [0, 1, 2].map((k) => ({ query: 'INSERT INTO ks.blobs (k, v) VALUES (?, ?)', params: [k + 10, Buffer.alloc(400000, 1)] }));
    await expectError(client.batch(huge, { prepare: true }), codes.invalid, 'Batch too large');
  });

  it('returns LWT results as Scylla does: [applied] and the row, every time', async () => {
    await client.execute('CREATE TABLE ks.lwt (k int PRIMARY KEY, v text, w int)');
    const ins = 'INSERT INTO ks.lwt (k, v, w) VALUES (?, ?, ?) IF NOT EXISTS';
    const first = await client.execute(ins, [1, 'first', 10], { prepare: true });
    assert.ok(first.wasApplied());
    assert.deepEqual(first.columns.map((c) => c.name), ['[applied]', 'k', 'v', 'w']);
    assert.equal(first.first().v, null);
    const second = await client.execute(ins, [1, 'second', 20], { prepare: true });
    assert.ok(!second.wasApplied());
    assert.deepEqual(second.columns.map((c) => c.name), ['[applied]', 'k', 'v', 'w']);
    assert.equal(second.first().v, 'first');
    assert.equal(second.first().w, 10);
    const upd = 'UPDATE ks.lwt SET v = ? WHERE k = ? IF v = ?';
    const applied = await client.execute(upd, ['updated', 1, 'first'], { prepare: true });
    assert.ok(applied.wasApplied());
    assert.deepEqual(applied.columns.map((c) => c.name), ['[applied]', 'v']);
    assert.equal(applied.first().v, 'first');
    const refused = await client.execute(upd, ['again', 1, 'first'], { prepare: true });
    assert.ok(!refused.wasApplied());
    assert.equal(refused.first().v, 'updated');
    const del = 'DELETE FROM ks.lwt WHERE k = ? IF EXISTS';
    assert.ok(!(await client.execute(del, [2], { prepare: true })).wasApplied());
    assert.ok((await client.execute(del, [1], { prepare: true })).wasApplied());
    assert.equal((await client.execute('SELECT * FROM ks.lwt WHERE k = 1')).rows.length, 0);
    const cas = await client.batch([
      { query: 'INSERT INTO ks.lwt (k, v) VALUES (5, ?) IF NOT EXISTS', params: ['batched'] },
      { query: 'UPDATE ks.lwt SET w = 1 WHERE k = 5' },
    ], { prepare: true });
    assert.ok(cas.wasApplied());
    assert.equal(cas.rows.length, 2);
    const e = await client.execute('SELECT v, w FROM ks.lwt WHERE k = 5');
    assert.deepEqual([e.first().v, e.first().w], ['batched', 1]);
  });

  it('reports errors with their codes and Scylla messages, and keeps serving', async () => {
    for (const bad of ['SELEC * FROM system.local', 'SELECT * FROM', "SELECT * FROM ks.kv WHERE a = 'x"]) {
      await expectError(client.execute(bad), codes.syntaxError);
    }
    await expectError(client.execute('SELECT * FROM ks.no_such_table'), codes.invalid, 'no_such_table');
    await expectError(client.execute('SELECT * FROM system.peers_v2'), codes.invalid, 'peers_v2');
    await expectError(client.execute(`CREATE KEYSPACE ks WITH replication = ${SIMPLE_RF1}`), codes.alreadyExists);
    await expectError(client.execute("INSERT INTO ks.kv (a, b, c, v) VALUES (1, 'b', 1, ?)", ['x', 'extra']),
      codes.invalid, 'Invalid amount of bind variables: expected 1 received 2');
    await client.execute('CREATE TABLE ks.tk (k text PRIMARY KEY, v int)');
    await expectError(client.execute('INSERT INTO ks.tk (k, v) VALUES (?, 1)', [''], { prepare: true }),
      codes.invalid, 'Key may not be empty');
    await expectError(client.execute('SELECT * FROM ks.kv WHERE c = 1'), codes.invalid,
      'Cannot execute this query as it might involve data filtering');
    await client.execute('SELECT * FROM ks.kv WHERE c = 1 ALLOW FILTERING');
    await expectError(client.execute('SELECT nosuchfn(v) FROM ks.kv'), codes.invalid, "Unknown function 'nosuchfn'");
    const ok = await client.execute("SELECT v FROM ks.kv WHERE a = 1 AND b = 'x' AND c = 40");
    assert.equal(ok.first().v, 'simple');
  });

  it('traces a request: its id on the result, its session in system_traces', async () => {
    const result = await client.execute("SELECT v FROM ks.kv WHERE a = 1 AND b = 'x' AND c = 0", [], { traceQuery: true });
    assert.ok(result.info.traceId instanceof Uuid, 'a trace id');
    const trace = await client.metadata.getTrace(result.info.traceId);
    assert.equal(trace.requestType, 'Execute CQL3 query');
    assert.equal(trace.parameters.query, "SELECT v FROM ks.kv WHERE a = 1 AND b = 'x' AND c = 0");
    assert.ok(trace.duration >= 0);
    assert.ok(trace.events.length >= 2);
    assert.equal(trace.events[0].activity, 'Parsing a statement');
    const untraced = await client.execute("SELECT v FROM ks.kv WHERE a = 1 AND b = 'x' AND c = 0");
    assert.equal(untraced.info.traceId, undefined);
  });
});

const TYPES_DDL = 'CREATE TABLE ks.types (k int PRIMARY KEY, a ascii, bi bigint, bl blob, bo boolean, '
  + 'd date, de decimal, db double, du duration, f float, i4 inet, i6 inet, i int, si smallint, tx text, '
  + 'tm time, ts timestamp, tu timeuuid, ti tinyint, u uuid, vi varint, l list<int>, s set<text>, '
  + 'm map<text, int>, tp tuple<int, text, double>, ud frozen<addr>, nested map<text, frozen<list<int>>>, '
  + 'fs frozen<set<int>>, fm frozen<map<int, text>>, em map<text, int>)';

function same(col, got, want) {
  if (want === null || want === undefined) {
    assert.equal(got, null, `${col}`);
  } else if (typeof want.equals === 'function') {
    assert.ok(want.equals(got), `${col}: read ${got}, wrote ${want}`);
  } else if (want instanceof Date) {
    assert.equal(got.getTime(), want.getTime(), col);
  } else if (want instanceof Tuple) {
    assert.deepEqual(got.values(), want.values(), col);
  } else {
    assert.deepEqual(got, want, col);
  }
}

describe('types, schema metadata and Scylla behaviours (3 nodes x 2 shards)', () => {
  let emu;
  let client;

  before(async () => {
    emu = await new Emulator(3, 2).start();
    client = connect(emu);
    await client.connect();
    await client.execute(`CREATE KEYSPACE ks WITH replication = ${SIMPLE_RF1}`);
    await client.execute('CREATE TYPE ks.addr (street text, zip int)');
    await client.execute(TYPES_DDL);
  });

  after(async () => {
    if (client) await client.shutdown();
    if (emu) await emu.stop();
  });

  it('round-trips every type through prepared statements', async () => {
    const tu = TimeUuid.now();
    const u = Uuid.random();
    const written = {
      a: 'ascii-ok',
      bi: Long.fromString('-9223372036854775808'),
      bl: Buffer.from([0, 1, 0xfe, 0xff]),
      bo: true,
      d: LocalDate.fromString('2024-02-29'),
      de: BigDecimal.fromString('-123456789.000000000123456789'),
      db: -1.5e300,
      du: new Duration(14, 3, Long.fromString('3000000123')),
      f: 3.5,
      i4: InetAddress.fromString('192.168.10.1'),
      i6: InetAddress.fromString('2001:db8::ff00:42:8329'),
      i: -2147483648,
      si: -32768,
      tx: "ünïcødé ✓ 'quoted'",
      tm: LocalTime.fromString('23:59:59.999999999'),
      ts: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
      tu,
      ti: -128,
      u,
      vi: Integer.fromString('-1267650600228229401496703205369'),
      l: [3, 1, 2, 1],
      s: ['c', 'a', 'b', 'a'],
      m: { y: -2, x: 1 },
      tp: new Tuple(7, 'seven', 7.5),
      ud: { street: 'Main St', zip: 12345 },
      nested: { k: [1, 2, 3], e: [0] },
      fs: [3, 1, 2],
      fm: { 2: 'two', 1: 'one' },
      em: {},
    };
    const cols = Object.keys(written);
    const ins = `INSERT INTO ks.types (k, ${cols.join(', ')}) VALUES (?, ${cols.map(() => '?').join(', ')})`;
    await client.execute(ins, [1, ...cols.map((c) => written[c])], { prepare: true });
    await client.execute('INSERT INTO ks.types (k) VALUES (2)', [], { prepare: true });
    const row = (await client.execute('SELECT * FROM ks.types WHERE k = ?', [1], { prepare: true })).first();
    const expected = {
      ...written,
      // As Scylla stores them: sets sorted and deduplicated, map keys
      // sorted; an empty non-frozen collection is no value at all.
      s: ['a', 'b', 'c'],
      fs: [1, 2, 3],
      em: null,
    };
    for (const c of cols) same(c, row[c], expected[c]);
    assert.deepEqual(Object.keys(row.m), ['x', 'y']);
    assert.deepEqual(Object.keys(row.fm), ['1', '2']);
    const empty = (await client.execute('SELECT * FROM ks.types WHERE k = 2', [], { prepare: true })).first();
    for (const c of cols) assert.equal(empty[c], null, c);
    // Frozen empty collections are values.
    await client.execute('UPDATE ks.types SET fm = {} WHERE k = 3');
    const frozen = (await client.execute('SELECT fm FROM ks.types WHERE k = 3')).first();
    assert.deepEqual(frozen.fm, {});
  });

  it('exposes schema metadata as the DDL declared it', async () => {
    const table = await client.metadata.getTable('ks', 'types');
    assert.deepEqual(table.partitionKeys.map((c) => c.name), ['k']);
    assert.equal(table.columnsByName.m.type.code, types.dataTypes.map);
    assert.equal(table.columnsByName.du.type.code, types.dataTypes.duration);
    assert.equal(table.columnsByName.ud.type.code, types.dataTypes.udt);
    assert.equal(table.columnsByName.tp.type.code, types.dataTypes.tuple);
    const udt = await client.metadata.getUdt('ks', 'addr');
    assert.deepEqual(udt.fields.map((f) => f.name), ['street', 'zip']);
    await client.execute('CREATE TABLE ks.clus (k int, c1 int, c2 text, v int, s int static, '
      + 'PRIMARY KEY (k, c1, c2)) WITH CLUSTERING ORDER BY (c1 DESC, c2 ASC)');
    const clus = await client.metadata.getTable('ks', 'clus');
    assert.deepEqual(clus.clusteringKeys.map((c) => c.name), ['c1', 'c2']);
    assert.ok(clus.columnsByName.s.isStatic);
    // Scylla writes clustering_order in capitals ('DESC'); this driver only
    // recognises Cassandra's 'desc', so it reports ASC, on Scylla as here.
    assert.deepEqual(clus.clusteringOrder, ['ASC', 'ASC']);
    const order = await client.execute("SELECT column_name, clustering_order FROM system_schema.columns "
      + "WHERE keyspace_name = 'ks' AND table_name = 'clus'");
    const byName = Object.fromEntries(order.rows.map((r) => [r.column_name, r.clustering_order]));
    assert.deepEqual(byName, { k: 'NONE', c1: 'DESC', c2: 'ASC', s: 'NONE', v: 'NONE' });
    for (const c1 of [1, 2, 3]) await client.execute('INSERT INTO ks.clus (k, c1, c2, v) VALUES (1, ?, ?, 0)', [c1, 'x'], { prepare: true });
    const rows = await client.execute('SELECT c1 FROM ks.clus WHERE k = 1');
    assert.deepEqual(rows.rows.map((r) => r.c1), [3, 2, 1]);
    const ks = client.metadata.keyspaces.ks;
    assert.equal(ks.strategy, 'org.apache.cassandra.locator.SimpleStrategy');
    assert.equal(ks.strategyOptions.replication_factor, '1');
    const traces = await client.metadata.getTable('system_traces', 'sessions');
    assert.deepEqual(traces.partitionKeys.map((c) => c.name), ['session_id']);
    assert.equal(traces.columnsByName.duration.type.code, types.dataTypes.int);
  });

  it('serves selector functions, aggregates, CAST and JSON', async () => {
    await client.execute('CREATE TABLE ks.f (k int, c int, v int, ts timestamp, PRIMARY KEY (k, c))');
    for (const c of [1, 2, 3]) {
      await client.execute('INSERT INTO ks.f (k, c, v, ts) VALUES (1, ?, ?, ?)',
        [c, c * 10, new Date(Date.UTC(2011, 1, 3, 4, 5, c))], { prepare: true });
    }
    const agg = (await client.execute('SELECT count(*), min(v), max(v), sum(v), avg(v) FROM ks.f WHERE k = 1')).first();
    assert.ok(agg.count.equals(Long.fromNumber(3)));
    assert.deepEqual([agg['system.min(v)'], agg['system.max(v)'], agg['system.sum(v)'], agg['system.avg(v)']], [10, 30, 60, 20]);
    const fns = (await client.execute(
      'SELECT toUnixTimestamp(ts) AS unix, toDate(ts) AS day, CAST(v AS text) AS vt FROM ks.f WHERE k = 1 AND c = 1')).first();
    assert.ok(fns.unix.equals(Long.fromString('1296705901000')));
    assert.equal(fns.day.toString(), '2011-02-03');
    assert.equal(fns.vt, '10');
    const json = (await client.execute('SELECT JSON c, v FROM ks.f WHERE k = 1 AND c = 2')).first();
    assert.equal(json['[json]'], '{"c": 2, "v": 20}');
    await client.execute('INSERT INTO ks.f JSON ?', ['{"k": 2, "c": 1, "v": 5}'], { prepare: true });
    const back = (await client.execute('SELECT toJson(v) AS j, v FROM ks.f WHERE k = 2 AND c = 1')).first();
    assert.deepEqual([back.j, back.v], ['5', 5]);
  });
});

describe('node restart (3 nodes x 2 shards)', () => {
  let emu;
  let client;

  before(async () => {
    emu = await new Emulator(3, 2).start();
    client = connect(emu, {
      policies: { reconnection: new cassandra.policies.reconnection.ConstantReconnectionPolicy(300) },
    });
    await client.connect();
  });

  after(async () => {
    if (client) await client.shutdown();
    if (emu) await emu.stop();
  });

  it('marks a restarted node down, then up, and serves its data again', async () => {
    await client.execute(`CREATE KEYSPACE ks WITH replication = ${SIMPLE_RF1}`);
    await client.execute('CREATE TABLE ks.r (k int PRIMARY KEY, v text)');
    const rows = Array.from({ length: 300 }, (_, k) => [k, `v${k}`]);
    await cassandra.concurrent.executeConcurrent(client, 'INSERT INTO ks.r (k, v) VALUES (?, ?)', rows);
    const victim = client.hosts.values().find((h) => h.address.startsWith(`${emu.ip(1)}:`));
    assert.ok(victim && victim.isUp());
    const owned = rows.filter(([k]) => client.metadata.getReplicas('ks', intBytes(k))[0] === victim);
    assert.ok(owned.length > 0, 'some rows live on the victim');
    const down = new Promise((resolve) => client.once('hostDown', resolve));
    const { status } = await emu.admin(1, '/admin/restart?down_ms=1500');
    assert.equal(status, 200);
    await waitUntil(async () => {
      // Requests to the node make the driver notice its closed connections.
      for (const [k] of owned.slice(0, 2)) {
        await client.execute('SELECT v FROM ks.r WHERE k = ?', [k], { prepare: true }).catch(() => {});
      }
      return !victim.isUp();
    }, 15000, 'the driver to mark the node down');
    await down;
    await waitUntil(() => victim.isUp(), 60000, 'the driver to mark the node up again');
    const before = await emu.snapshot();
    for (const [k, v] of rows) {
      const row = (await client.execute('SELECT v FROM ks.r WHERE k = ?', [k], { prepare: true })).first();
      assert.equal(row.v, v);
    }
    const d = (await emu.snapshot()).minus(before).routing();
    assert.equal(d.misroutedNode, 0, JSON.stringify(d));
    assert.ok((await emu.snapshot()).get('emulator_requests_total', { node: 1 }) > 0);
    await client.execute('CREATE TABLE ks.after_restart (k int PRIMARY KEY)');
    await waitUntil(async () => (await client.metadata.getTable('ks', 'after_restart')) !== null, 10000,
      'the new table in the metadata');
  });
});
