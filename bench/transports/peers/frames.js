// Length-prefixed framing used by the Unix socket transport (both sides).
// Frame: [u32 LE payload length][u8 type][payload].

export const HEADER = 5;
export const T_PING = 1; // echoed back by the peer
export const T_DATA = 2; // throughput data: counted, never assembled
export const T_CTRL = 3; // JSON control message

/** Build one frame (allocates; use it once and reuse the result). */
export function encodeFrame(type, payload) {
  const buf = Buffer.allocUnsafe(HEADER + payload.length);
  buf.writeUInt32LE(payload.length, 0);
  buf[4] = type;
  payload.copy(buf, HEADER);
  return buf;
}

export function encodeControl(obj) {
  return encodeFrame(T_CTRL, Buffer.from(JSON.stringify(obj)));
}

/**
 * Incremental frame parser. PING and CTRL frames are delivered whole to
 * `onFrame(type, payload)` (a view into the chunk when it is contiguous, else a
 * copy). DATA frames are streamed: `onData(byteCount)` for each piece and
 * `onDataEnd()` when the frame is complete, so large payloads are never copied.
 */
export class FrameReader {
  constructor({ onFrame, onData = () => {}, onDataEnd = () => {} }) {
    this.onFrame = onFrame;
    this.onData = onData;
    this.onDataEnd = onDataEnd;
    this.header = Buffer.alloc(HEADER);
    this.headerFill = 0;
    this.inFrame = false;
    this.type = 0;
    this.remaining = 0;
    this.acc = null;
    this.accFill = 0;
  }

  push(chunk) {
    const n = chunk.length;
    let off = 0;
    while (off < n) {
      if (!this.inFrame) {
        let len;
        let type;
        if (this.headerFill === 0 && n - off >= HEADER) {
          len = chunk.readUInt32LE(off);
          type = chunk[off + 4];
          off += HEADER;
        } else {
          const take = Math.min(HEADER - this.headerFill, n - off);
          chunk.copy(this.header, this.headerFill, off, off + take);
          this.headerFill += take;
          off += take;
          if (this.headerFill < HEADER) return;
          this.headerFill = 0;
          len = this.header.readUInt32LE(0);
          type = this.header[4];
        }
        if (type === T_DATA) {
          if (len === 0) {
            this.onDataEnd();
            continue;
          }
        } else if (n - off >= len) {
          // Whole frame in this chunk: hand out a view, no copy.
          this.onFrame(type, chunk.subarray(off, off + len));
          off += len;
          continue;
        } else {
          this.acc = Buffer.allocUnsafe(len);
          this.accFill = 0;
        }
        this.inFrame = true;
        this.type = type;
        this.remaining = len;
        if (off >= n) return;
      }
      const take = Math.min(this.remaining, n - off);
      if (this.type === T_DATA) {
        this.onData(take);
      } else {
        chunk.copy(this.acc, this.accFill, off, off + take);
        this.accFill += take;
      }
      off += take;
      this.remaining -= take;
      if (this.remaining === 0) {
        this.inFrame = false;
        if (this.type === T_DATA) {
          this.onDataEnd();
        } else {
          const acc = this.acc;
          this.acc = null;
          this.onFrame(this.type, acc);
        }
      }
    }
  }
}
