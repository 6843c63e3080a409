// JSON answers of the routes that are neither GraphQL nor OAuth (GraphQL
// answers as GraphQL over HTTP does; better-auth and the token endpoint in
// their own shapes). Every error of these routes has one envelope:
//
//   {"error": {"code": "NOT_FOUND", "message": "No such route."}}
//
// where the code is stable (clients branch on it) and the message a fixed
// text for people, which never quotes the request.
import type http from 'node:http';

export function sendJson(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

/** An error in the envelope above (more fields, such as a guardrail refusal's rule, follow code and message). */
export function sendError(
  res: http.ServerResponse,
  status: number,
  error: { code: string; message: string } & Record<string, string>,
  headers: Record<string, string> = {},
): void {
  const { code, message, ...more } = error;
  sendJson(res, status, { error: { code, message, ...more } }, headers);
}
