import { isIP } from "node:net";

/**
 * The client's address as the proxy in front of the app reports it in `headerName`
 * (CLIENT_ADDRESS_HEADER), as a key for counting (see addressKey), or null when none is
 * configured or the header holds no address. Only a header the proxy sets itself can be
 * trusted: a client may send any header, so with x-forwarded-for the last entry counts
 * (the one the proxy appended).
 */
export function clientAddressOf(headers: Headers, headerName: string | undefined): string | null {
  if (!headerName) return null;
  const value = headers.get(headerName);
  if (!value) return null;
  return addressKey((headerName === "x-forwarded-for" ? value.split(",").at(-1)! : value).trim());
}

/**
 * One key per client: an IPv4 address (also written IPv4-mapped in IPv6), or an IPv6
 * address's /64 — one host commonly holds a whole /64, and keyed one by one it would
 * never run out of addresses. A port or brackets around it do not count; anything that
 * is no IP address is null.
 */
export function addressKey(raw: string): string | null {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(raw);
  let host = bracketed ? bracketed[1]! : /^[\d.]+:\d+$/.test(raw) ? raw.slice(0, raw.lastIndexOf(":")) : raw;
  host = host.replace(/%.*$/, ""); // an IPv6 zone
  if (isIP(host) === 4) return host;
  if (isIP(host) !== 6) return null;
  const groups = ipv6Groups(host);
  if (groups.slice(0, 5).every((group) => group === "0") && groups[5] === "ffff") {
    const [high, low] = [parseInt(groups[6]!, 16), parseInt(groups[7]!, 16)];
    return [high >> 8, high & 255, low >> 8, low & 255].join(".");
  }
  return `${groups.slice(0, 4).join(":")}::/64`;
}

/** An IPv6 address's eight groups in lower-case hex without leading zeros (an IPv4 tail converted). */
function ipv6Groups(address: string): string[] {
  // The URL parser writes IPv6 in its canonical form: lower-case, "::" for the longest run of zeros.
  const canonical = new URL(`http://[${address}]/`).hostname.slice(1, -1);
  if (!canonical.includes("::")) return canonical.split(":");
  const [head, tail] = canonical.split("::") as [string, string];
  const left = head ? head.split(":") : [];
  const right = tail ? tail.split(":") : [];
  return [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
}
