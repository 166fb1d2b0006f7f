/**
 * probability.npy: the map in NumPy's NPY format version 1.0 (numpy.lib.format):
 * magic "\x93NUMPY", version 1.0, a little-endian uint16 header length, then
 * the header, a Python dict literal padded with spaces to a multiple of 64
 * bytes and ended by "\n", then the data: '<f4', C order, shape (rows, cols),
 * NaN = no data. `np.load('probability.npy')` reads it.
 */

/** The NPY v1.0 bytes of a rows x cols float32 array (row major). */
export function encodeNpyFloat32(data: Float32Array, rows: number, cols: number): Uint8Array {
  if (data.length !== rows * cols) throw new RangeError(`Expected ${rows}x${cols} = ${rows * cols} values for data but received ${data.length}`);
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, ${cols}), }`;
  const preamble = 10; // magic (6) + version (2) + header length (2)
  const headerLength = Math.ceil((preamble + dict.length + 1) / 64) * 64 - preamble;
  const header = dict.padEnd(headerLength - 1, ' ') + '\n';
  const bytes = new Uint8Array(preamble + headerLength + 4 * data.length);
  bytes.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0, headerLength & 0xff, headerLength >> 8]);
  bytes.set(Buffer.from(header, 'latin1'), preamble);
  const view = new DataView(bytes.buffer, preamble + headerLength);
  data.forEach((v, k) => view.setFloat32(4 * k, v, true));
  return bytes;
}
