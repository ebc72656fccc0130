// Pre-encodes what a Hocuspocus client sends in the server benchmark, for tandem-bench's
// `--protocol hocuspocus --frames FILE`: the handshake (auth token, then Yjs sync step 1 with
// an empty state vector) and COUNT updates of one writer's Y.Doc — `map.set("k<i % 100>",
// "t=<16 digits>")`, the Yjs equivalent of a seed-001 op — each in a Hocuspocus sync-update
// frame. The 16 zero digits are the send-time stamp tandem-bench patches in place.
//
//   node bench/server/yjs-frames.mjs COUNT OUT_FILE [DOCUMENT]
import { writeFileSync } from "node:fs";
import * as encoding from "lib0/encoding";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";

const [count, out, documentName = "bench"] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
if (!(count > 0) || !out) throw new Error("usage: yjs-frames.mjs COUNT OUT_FILE [DOCUMENT]");

const MESSAGE_SYNC = 0; // @hocuspocus/common MessageType.Sync
const MESSAGE_AUTH = 2; // MessageType.Auth
const AUTH_TOKEN = 0; // AuthMessageType.Token

function frame(write) {
  const encoder = encoding.createEncoder();
  encoding.writeVarString(encoder, documentName);
  write(encoder);
  return Buffer.from(encoding.toUint8Array(encoder)).toString("hex");
}

const doc = new Y.Doc();
const handshake = [
  frame((e) => {
    encoding.writeVarUint(e, MESSAGE_AUTH);
    encoding.writeVarUint(e, AUTH_TOKEN);
    encoding.writeVarString(e, "bench");
  }),
  frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeSyncStep1(e, new Y.Doc());
  }),
];
const ops = [];
doc.on("update", (update) => {
  ops.push(frame((e) => {
    encoding.writeVarUint(e, MESSAGE_SYNC);
    syncProtocol.writeUpdate(e, update);
  }));
});
const map = doc.getMap("ops");
const stamp = `t=${"0".repeat(16)}`;
for (let i = 0; i < count; i++) map.set(`k${i % 100}`, stamp);
writeFileSync(out, JSON.stringify({ documentName, handshake, ops }));
