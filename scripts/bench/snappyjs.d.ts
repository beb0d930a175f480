// snappyjs ships no types; only what kept-data-compressibility.ts uses.
declare module "snappyjs" {
  const snappy: { uncompress(compressed: Uint8Array): Uint8Array };
  export default snappy;
}
