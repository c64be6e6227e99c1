// A TCP proxy to PostgreSQL that can lose the answer to one COMMIT: the server has committed (it
// sends CommandComplete "COMMIT" once the commit is durable), and the connection closes before the
// client reads that answer, as when the network or the server's host dies at that moment. Everything
// the server sent before it is delivered. Deterministic: it cuts at a protocol message, no timers.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { throughProxy } from './tcp-proxy.js';

/** CommandComplete ('C') with the tag "COMMIT": the server's answer to a COMMIT that committed. */
const COMMIT_DONE = Buffer.concat([Buffer.from('C'), int32(4 + 7), Buffer.from('COMMIT\0')]);

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

export class CommitAnswerProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private armed: (() => void) | undefined;
  port = 0;

  private readonly targetHost: string;
  private readonly targetPort: number;

  /** A proxy to the server of `url`. */
  constructor(url: string) {
    const u = new URL(url);
    this.targetHost = u.hostname || '127.0.0.1';
    this.targetPort = Number(u.port || 5432);
  }

  async start(): Promise<void> {
    this.server = createServer((client) => this.forward(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The URL `url` with its host and port replaced by this proxy's. */
  via(url: string): string {
    return throughProxy(url, this.port);
  }

  /**
   * Loses the next COMMIT answer on any connection: what came before it is delivered, then both
   * sides are closed. Resolves once that happened.
   */
  loseNextCommitAnswer(): Promise<void> {
    return new Promise((resolve) => {
      this.armed = resolve;
    });
  }

  private forward(client: Socket): void {
    const upstream = connect(this.targetPort, this.targetHost);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => {});
    }
    client.pipe(upstream);
    // The server's side is read message by message (a type byte and a length; the proxied
    // connections never ask for TLS, so every message the server sends is framed so).
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let end = 0;
      while (pending.length - end >= 5) {
        const length = 1 + pending.readInt32BE(end + 1);
        if (pending.length - end < length) break;
        const message = pending.subarray(end, end + length);
        if (this.armed && message.equals(COMMIT_DONE)) {
          const done = this.armed;
          this.armed = undefined;
          // What came before the answer still reaches the client; then the connection closes.
          client.end(pending.subarray(0, end));
          upstream.destroy();
          done();
          return;
        }
        end += length;
      }
      if (end > 0) client.write(pending.subarray(0, end));
      pending = pending.subarray(end);
    });
    upstream.on('end', () => client.end());
    client.on('close', () => upstream.destroy());
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
