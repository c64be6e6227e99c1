// A TCP proxy (for PostgreSQL in tests) that can be blackholed: it stops forwarding in both
// directions without closing anything, and holds new connections without forwarding them, as a
// network partition or a frozen host looks to both ends. Nothing is reset, so neither the client
// nor the server learns that the other side is gone.
import { connect, createServer, type Server, type Socket } from 'node:net';

/** `url` with its host and port replaced by those of a proxy listening on loopback at `port`. */
export function throughProxy(url: string, port: number): string {
  const u = new URL(url);
  u.hostname = '127.0.0.1';
  u.port = String(port);
  return u.toString();
}

export class BlackholeProxy {
  private server?: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<Socket>();
  private blackholed = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      client.on('error', () => {});
      if (this.blackholed) {
        // Accepted (the kernel would have anyway), never answered.
        client.pause();
        this.held.add(client);
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      upstream.on('error', () => {});
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const closeBoth = () => {
        if (this.blackholed) return;
        this.pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', closeBoth);
      upstream.on('close', closeBoth);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** The URL `url` with its host and port replaced by this proxy's. */
  via(url: string): string {
    return throughProxy(url, this.port);
  }

  /** Stop forwarding: bytes already sent stay unanswered, closes are not passed on either. */
  blackhole(): void {
    this.blackholed = true;
    for (const [client, upstream] of this.pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  }

  /** Closes every socket and the listener. */
  async close(): Promise<void> {
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    for (const s of this.held) s.destroy();
    this.pairs.clear();
    this.held.clear();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
