#!/usr/bin/env node
// Drops custom sections from a wasm module in place: `strip-wasm.mjs FILE SECTION...`.
import { readFileSync, writeFileSync } from "node:fs";

const [file, ...names] = process.argv.slice(2);
const bytes = readFileSync(file);

/** Unsigned LEB128 at `pos`: [value, position after it]. */
function leb(pos) {
  let value = 0;
  let shift = 0;
  let byte;
  do {
    byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

const kept = [bytes.subarray(0, 8)]; // magic and version
let pos = 8;
while (pos < bytes.length) {
  const start = pos;
  const id = bytes[pos++];
  const [size, payload] = leb(pos);
  pos = payload + size;
  if (id === 0) {
    const [length, at] = leb(payload);
    if (names.includes(bytes.subarray(at, at + length).toString())) continue;
  }
  kept.push(bytes.subarray(start, pos));
}
writeFileSync(file, Buffer.concat(kept));
