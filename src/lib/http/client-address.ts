/** What an address can look like (IPv4, IPv6, with a zone or port at most): anything else is no address. */
const ADDRESS = /^[0-9A-Za-z.:%[\]_-]{1,64}$/;

/**
 * The client's address as the proxy in front of the app reports it in `headerName`
 * (CLIENT_ADDRESS_HEADER), or null when none is configured or the header says nothing
 * usable. Only a header the proxy sets itself can be trusted: a client may send any
 * header, so with x-forwarded-for the last entry counts (the one the proxy appended).
 */
export function clientAddressOf(headers: Headers, headerName: string | undefined): string | null {
  if (!headerName) return null;
  const value = headers.get(headerName);
  if (!value) return null;
  const address = (headerName === "x-forwarded-for" ? value.split(",").at(-1)! : value).trim().toLowerCase();
  return ADDRESS.test(address) ? address : null;
}
