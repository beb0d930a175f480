/**
 * An error the HTTP layer itself raises (a body it cannot read, a validation failure,
 * a route-level refusal). Its `code` is one of ERROR_STATUS's; `fields` carries
 * validation messages per field.
 */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly fields?: Record<string, string[]>,
  ) {
    super(message);
    this.name = "ApiError";
  }
}
