export type ApiAnswer<T> =
  | { ok: true; status: number; data: T }
  | { ok: false; status: number; code: string; message: string; fields?: Record<string, string[]> };

/**
 * Calls one of wavault's API routes from the browser (the httpOnly cookie carries the
 * user's token) and reads its JSON answer or its `{ error }`.
 */
export async function callApi<T>(method: "GET" | "POST", route: string, body?: unknown, signal?: AbortSignal): Promise<ApiAnswer<T>> {
  try {
    const response = await fetch(route, {
      method,
      signal,
      cache: "no-store",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = await response.json().catch(() => ({}));
    if (response.ok) return { ok: true, status: response.status, data: json as T };
    const error = (json as { error?: { code?: string; message?: string; fields?: Record<string, string[]> } }).error ?? {};
    return { ok: false, status: response.status, code: error.code ?? "unknown", message: error.message ?? "Something went wrong.", fields: error.fields };
  } catch {
    return { ok: false, status: 0, code: "network", message: "This page cannot reach the server. Check your connection." };
  }
}
