'use strict';
// Starts and stops the scylla-emulator binary for the Node.js conformance
// tests, reads its Prometheus counters and posts admin requests. Every wait
// polls a condition until a deadline; every emulator started is stopped by
// its pid.

const { spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');

const BINARY = process.env.SCYLLA_EMULATOR
  || path.resolve(__dirname, '../../target/release/scylla-emulator');

// Each emulator gets its own 127.0.N.0/24 block; the start moves with the pid
// so that reruns (and the Python suite, which uses 127.0.20-249) do not meet
// another run's sockets.
let nextBlock = 100 + (process.pid % 60) * 2;

function hostIdOf(i) {
  return '00000000-0000-4000-8000-' + (i + 1).toString(16).padStart(12, '0');
}

async function waitUntil(predicate, timeoutMs, what, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await predicate();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

function request(method, url, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Sums of Prometheus samples: `get(name, {node, shard, port})`. */
class Snapshot {
  constructor(samples) {
    this.samples = samples;
  }

  get(name, filter = {}) {
    let total = 0;
    for (const s of this.samples) {
      if (s.name !== name) continue;
      if (filter.node !== undefined && s.node !== filter.node) continue;
      if (filter.shard !== undefined && s.labels.shard !== String(filter.shard)) continue;
      if (filter.port !== undefined && s.labels.port !== String(filter.port)) continue;
      total += s.value;
    }
    return total;
  }

  minus(before) {
    const out = this.samples.map((s) => ({ ...s }));
    for (const b of before.samples) {
      out.push({ ...b, value: -b.value });
    }
    return new Snapshot(out);
  }

  routing() {
    return {
      requests: this.get('emulator_requests_total'),
      routable: this.get('emulator_routable_requests_total'),
      misroutedNode: this.get('emulator_misrouted_node_total'),
      misroutedShard: this.get('emulator_misrouted_shard_total'),
    };
  }
}

function parsePrometheus(text, node) {
  const samples = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line.trim());
    if (!m || line.startsWith('#')) continue;
    const labels = {};
    for (const l of (m[2] || '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1]] = l[2];
    }
    const value = Number(m[3]);
    if (!Number.isNaN(value)) samples.push({ name: m[1], labels, value, node });
  }
  return samples;
}

class Emulator {
  constructor(nodes, shards, extra = []) {
    this.nodes = nodes;
    this.shards = shards;
    this.extra = extra;
    nextBlock = nextBlock >= 249 ? 100 : nextBlock + 1;
    this.baseIp = `127.0.${nextBlock}.1`;
    this.port = 9042;
    this.metricsPort = 9180;
    this.stderr = '';
  }

  ip(i) {
    const parts = this.baseIp.split('.').map(Number);
    parts[3] += i;
    return parts.join('.');
  }

  get ips() {
    return Array.from({ length: this.nodes }, (_, i) => this.ip(i));
  }

  async start(timeoutMs = 30000) {
    const args = ['--nodes', String(this.nodes), '--shards', String(this.shards),
      '--base-ip', this.baseIp, '--port', String(this.port),
      '--metrics-port', String(this.metricsPort), ...this.extra];
    this.child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    this.child.stdout.on('data', (d) => { stdout += d; });
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-8000); });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
    let exitCode = null;
    this.exited.then((code) => { exitCode = code; });
    await waitUntil(() => {
      if (exitCode !== null) throw new Error(`emulator exited (${exitCode}): ${this.stderr}`);
      return stdout.includes('READY');
    }, timeoutMs, `emulator READY (${BINARY} ${args.join(' ')})`);
    for (let i = 0; i < this.nodes; i++) {
      await waitUntil(async () => (await request('GET', this.url(i, '/metrics'))).status === 200,
        10000, `metrics endpoint of node ${i}`);
    }
    return this;
  }

  async stop() {
    if (!this.child || this.child.exitCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10000);
    await this.exited;
    clearTimeout(timer);
  }

  url(i, p) {
    return `http://${this.ip(i)}:${this.metricsPort}${p}`;
  }

  async snapshot() {
    const samples = [];
    for (let i = 0; i < this.nodes; i++) {
      const { status, body } = await request('GET', this.url(i, '/metrics'));
      if (status !== 200) throw new Error(`GET /metrics on node ${i}: HTTP ${status}`);
      samples.push(...parsePrometheus(body, i));
    }
    return new Snapshot(samples);
  }

  async admin(i, p) {
    return request('POST', this.url(i, p), 10000);
  }
}

module.exports = { Emulator, Snapshot, hostIdOf, waitUntil };
