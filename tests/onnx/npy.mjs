// A small .npy v1 reader and writer (NumPy's NEP 1 format) for the reference harness. It is
// written independently of hearth's src/hearth/onnx/npy.cpp, so the files hearth reads and
// writes in the harness also cross-check that reader and writer.
import fs from 'node:fs';

const DESCR = {
  float32: '<f4', float64: '<f8', int64: '<i8', int32: '<i4', int16: '<i2', int8: '|i1',
  uint8: '|u1', uint16: '<u2', uint32: '<u4', uint64: '<u8', bool: '|b1',
};
const ARRAY = {
  float32: Float32Array, float64: Float64Array, int64: BigInt64Array, int32: Int32Array,
  int16: Int16Array, int8: Int8Array, uint8: Uint8Array, uint16: Uint16Array,
  uint32: Uint32Array, uint64: BigUint64Array, bool: Uint8Array,
};

// {dtype, shape, data} -> .npy bytes (header padded with spaces to 64 bytes, ending in '\n').
export function encodeNpy({ dtype, shape, data }) {
  const descr = DESCR[dtype];
  if (!descr) throw new Error(`npy: cannot write dtype ${dtype}`);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prelude = Buffer.alloc(10);
  prelude.write('\x93NUMPY', 0, 'latin1');
  prelude[6] = 1;
  prelude[7] = 0;
  prelude.writeUInt16LE(header.length, 8);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([prelude, Buffer.from(header, 'latin1'), body]);
}

export function writeNpy(path, tensor) {
  fs.writeFileSync(path, encodeNpy(tensor));
}

// .npy v1/v2 bytes -> {dtype, shape, data}; only what encodeNpy (and hearth) write.
export function decodeNpy(buf, what = 'npy') {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${what}: not a .npy file`);
  const major = buf[6];
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.toString('latin1', start, start + hlen);
  const m = /'descr': '([<|>][a-z]\d)', 'fortran_order': False, 'shape': \(([\d, ]*)\)/.exec(header);
  if (!m) throw new Error(`${what}: unexpected header ${JSON.stringify(header)}`);
  const dtype = Object.keys(DESCR).find((k) => DESCR[k] === m[1]);
  if (!dtype) throw new Error(`${what}: unsupported descr ${m[1]}`);
  const shape = m[2].split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const off = start + hlen;
  const A = ARRAY[dtype];
  if (buf.length - off !== n * A.BYTES_PER_ELEMENT) {
    throw new Error(`${what}: ${buf.length - off} data bytes for shape [${shape}] of ${dtype}`);
  }
  const copy = new Uint8Array(buf.subarray(off)).slice();  // aligned copy
  return { dtype, shape, data: new A(copy.buffer, 0, n) };
}

export function readNpy(path) {
  return decodeNpy(fs.readFileSync(path), path);
}
