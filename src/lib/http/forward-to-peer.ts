import { log } from "../log";
import { NO_ROOM_CODES } from "../messaging/connection-manager";
import { errorCode } from "../messaging/session-store-errors";
import { ApiError } from "./api-error";
import { forwardToOwner, isForwarded } from "./forward-to-owner";


/** At most this many other instances are asked, one after another, before the refusal stands. */
const MAX_PEERS_TRIED = 3;

/** Another instance that may take a request this one has no room for. */
export interface PeerWithRoom {
  instanceId: string;
  url: string;
}

/**
 * For a request refused because this instance has no room for another client (its cap
 * or memory budget) or is shutting down: the successful answer of another instance that
 * takes it, tried in the order `peersWithRoom` gives (at most 3). A peer that refuses it
 * (full too, say) is passed over, and so is one that cannot be reached. Null when the
 * refusal stands: no peer, none took it, the request came forwarded already (it is never
 * forwarded twice), or the peers could not be read.
 * @throws ApiError forward_failed when a peer may have got the request but no answer
 *   came back (a client may be starting there: the caller's status shows it)
 */
export async function answerFromPeer(
  request: Request,
  refusal: unknown,
  body: unknown,
  peersWithRoom: () => Promise<PeerWithRoom[]>,
): Promise<Response | null> {
  if (!NO_ROOM_CODES.has(errorCode(refusal)) || isForwarded(request)) return null;
  let peers: PeerWithRoom[];
  try {
    peers = await peersWithRoom();
  } catch (error) {
    log("warn", "Could not read the other instances for a request this one has no room for", { code: errorCode(error) });
    return null;
  }
  for (const peer of peers.slice(0, MAX_PEERS_TRIED)) {
    const outcome = await forwardToOwner(request, peer.url, body, { to: "peer" });
    if (!outcome.answer) {
      if (!outcome.reached) continue;
      throw new ApiError("forward_failed", "Another server instance took this request but did not answer; it may have been carried out there.");
    }
    // Any refusal there — full since its last heartbeat, its own trouble, or this
    // instance's lease still on the session (a client of its own stopping) — is no
    // taking: the next is asked, and in the end this instance's refusal stands.
    if (!outcome.answer.ok) continue;
    log("info", "A request this instance had no room for was taken by another instance", { path: new URL(request.url).pathname, instance: peer.instanceId });
    return outcome.answer;
  }
  return null;
}
