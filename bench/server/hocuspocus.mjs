// The Hocuspocus (Yjs) peer of `npm run bench:server`: a plain @hocuspocus/server on a loopback
// port, as its docs start one — no extensions, so documents live in memory only (its database
// extension would store them debounced, after the broadcast). Prints `listening <port>`.
//
//   node bench/server/hocuspocus.mjs [PORT]
import { Server } from "@hocuspocus/server";

const server = new Server({
  port: Number(process.argv[2] ?? 0),
  address: "127.0.0.1",
  quiet: true,
  // The bench's receivers never answer pings; a run is over long before this.
  timeout: 120_000,
});
await server.listen();
console.log(`listening ${server.httpServer.address().port}`);
