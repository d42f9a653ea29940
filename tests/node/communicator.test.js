'use strict';
// The Node.js cassandra-driver (from npm, pinned in package.json),
// unchanged, through scylla-communicator in front of a 3-node x 4-shard
// emulator: the daemon is one node to it; prepared statements route with no
// misroute behind it, paging, a batch and server errors behave as they do
// directly, and the cluster keeps nodes x shards + 1 connections. The daemon
// and the emulator are stopped by their pids.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const cassandra = require('cassandra-driver');
const { Emulator, waitUntil } = require('./emulator');

const COMMUNICATOR = process.env.SCYLLA_COMMUNICATOR
  || path.resolve(__dirname, '../../target/release/scylla-communicator');
const NODES = 3;
const SHARDS = 4;
const KEYSPACE = 'node_through_daemon';

/** A daemon in front of `emu`, on TCP at .200 of the emulator's block. */
class Communicator {
  constructor(emu) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshard-comm-'));
    this.host = emu.ip(199);
    this.port = 9042;
    this.args = ['--cluster-contact-points', `${emu.ip(0)}:${emu.port}`,
      '--listen-unix', path.join(this.dir, 'cql.sock'),
      '--listen-tcp', `${this.host}:${this.port}`, '--listen-rpc-address', this.host,
      '--log-level', 'warn'];
    this.stderr = '';
  }

  async start() {
    this.child = spawn(COMMUNICATOR, this.args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-8000); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    let exitCode = null;
    this.exited.then((code) => { exitCode = code; });
    await waitUntil(() => {
      if (exitCode !== null) throw new Error(`communicator exited (${exitCode}): ${this.stderr}`);
      return this.stderr.includes('scylla-communicator: ready');
    }, 30000, `communicator ready (${COMMUNICATOR} ${this.args.join(' ')})`);
    return this;
  }

  async stop() {
    if (this.child && this.child.exitCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
      await this.exited;
      clearTimeout(timer);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function misroutes(emu) {
  const s = await emu.snapshot();
  return s.get('emulator_misrouted_node_total') + s.get('emulator_misrouted_shard_total');
}

describe('cassandra-driver through scylla-communicator', () => {
  let emu;
  let comm;
  let client;

  before(async () => {
    emu = await new Emulator(NODES, SHARDS).start();
    comm = await new Communicator(emu).start();
    client = new cassandra.Client({
      contactPoints: [comm.host],
      localDataCenter: 'datacenter1',
      protocolOptions: { port: comm.port },
      socketOptions: { readTimeout: 20000 },
    });
    await client.connect();
  });

  after(async () => {
    if (client) await client.shutdown();
    if (comm) await comm.stop();
    if (emu) await emu.stop();
  });

  it('sees the daemon as the one node', () => {
    const hosts = client.hosts.values();
    assert.equal(hosts.length, 1);
    assert.equal(hosts[0].address, `${comm.host}:${comm.port}`);
  });

  it('prepares, executes, pages, batches and gets errors', async () => {
    await client.execute(`CREATE KEYSPACE ${KEYSPACE} WITH replication = `
      + "{'class': 'NetworkTopologyStrategy', 'replication_factor': 2}");
    await client.execute(`CREATE TABLE ${KEYSPACE}.kv (k int PRIMARY KEY, v text)`);
    const before = await misroutes(emu);
    const insert = `INSERT INTO ${KEYSPACE}.kv (k, v) VALUES (?, ?)`;
    const total = 120;
    for (let k = 0; k < total; k++) {
      await client.execute(insert, [k, `v${k}`], { prepare: true });
    }
    for (let k = 0; k < total; k += 11) {
      const rs = await client.execute(`SELECT v FROM ${KEYSPACE}.kv WHERE k = ?`, [k], { prepare: true });
      assert.equal(rs.first().v, `v${k}`);
    }
    assert.equal(await misroutes(emu), before, 'prepared requests misrouted behind the daemon');

    await client.batch(Array.from({ length: 10 }, (_, i) => ({ query: insert, params: [total + i, 'batched'] })),
      { prepare: true });
    const batched = await client.execute(`SELECT v FROM ${KEYSPACE}.kv WHERE k = ?`, [total + 9], { prepare: true });
    assert.equal(batched.first().v, 'batched');

    // Paging: the driver's paging state goes through the daemon and back.
    const keys = [];
    let pageState;
    let pages = 0;
    do {
      const rs = await client.execute(`SELECT k FROM ${KEYSPACE}.kv`, [], { fetchSize: 25, pageState });
      pages += 1;
      keys.push(...rs.rows.map((r) => r.k));
      pageState = rs.pageState;
    } while (pageState);
    assert.deepEqual(keys.sort((a, b) => a - b), Array.from({ length: total + 10 }, (_, i) => i));
    assert.ok(pages >= Math.ceil((total + 10) / 25), `${pages} pages`);

    await assert.rejects(client.execute(`SELECT * FROM ${KEYSPACE}.no_such_table`),
      (e) => e.code === cassandra.types.responseErrorCodes.invalid && /no_such_table/.test(e.message));
    await assert.rejects(client.execute('SELEC nonsense'),
      (e) => e.code === cassandra.types.responseErrorCodes.syntaxError);
    // Still usable after the errors.
    const rs = await client.execute(`SELECT v FROM ${KEYSPACE}.kv WHERE k = ?`, [1], { prepare: true });
    assert.equal(rs.first().v, 'v1');

    const s = await emu.snapshot();
    assert.equal(s.get('emulator_connections_current'), NODES * SHARDS + 1);
  });
});
