// A small HTTP client for the API as any program would use it: better-auth's
// endpoints and GraphQL over fetch.
import { randomUUID } from 'node:crypto';

export interface Session {
  token: string;
  cookie: string;
  user: { id: string; email: string; name: string };
  email: string;
  password: string;
}

export interface GraphQLResponse<T = Record<string, unknown>> {
  status: number;
  body: {
    data?: T | null;
    errors?: { message: string; path?: string[]; extensions?: Record<string, unknown> }[];
  };
  text: string;
}

export type Auth = { token?: string; cookie?: string } | undefined;

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${randomUUID()}@example.test`;
}

async function authPost(base: string, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${base}/api/auth${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
}

function sessionFrom(res: Response, json: { user: Session['user'] }, email: string, password: string): Session {
  const token = res.headers.get('set-auth-token');
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = /better-auth\.session_token=[^;]+/.exec(setCookie)?.[0];
  if (!token || !cookie) throw new Error(`no session in response (${res.status})`);
  return { token, cookie, user: json.user, email, password };
}

export async function signUp(
  base: string,
  input: { email?: string; password?: string; name?: string } = {},
): Promise<Session> {
  const email = input.email ?? uniqueEmail();
  const password = input.password ?? `pw-${randomUUID()}`;
  const res = await authPost(base, '/sign-up/email', { email, password, name: input.name ?? 'Test User' });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`sign-up failed: ${res.status} ${JSON.stringify(json)}`);
  return sessionFrom(res, json as { user: Session['user'] }, email, password);
}

export async function signIn(base: string, email: string, password: string): Promise<Session> {
  const res = await authPost(base, '/sign-in/email', { email, password });
  const json = await res.json();
  if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${JSON.stringify(json)}`);
  return sessionFrom(res, json as { user: Session['user'] }, email, password);
}

export function rawSignIn(base: string, email: string, password: string, headers?: Record<string, string>) {
  return authPost(base, '/sign-in/email', { email, password }, headers);
}

export function rawSignUp(base: string, body: unknown, headers?: Record<string, string>) {
  return authPost(base, '/sign-up/email', body, headers);
}

export async function signOut(base: string, session: { token?: string; cookie?: string }): Promise<Response> {
  return fetch(`${base}/api/auth/sign-out`, {
    method: 'POST',
    headers: {
      ...(session.token ? { authorization: `Bearer ${session.token}` } : {}),
      ...(session.cookie ? { cookie: session.cookie } : {}),
    },
  });
}

export async function gql<T = Record<string, any>>(
  base: string,
  query: string,
  variables?: Record<string, unknown>,
  auth?: Auth,
): Promise<GraphQLResponse<T>> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(auth?.token ? { authorization: `Bearer ${auth.token}` } : {}),
      ...(auth?.cookie ? { cookie: auth.cookie } : {}),
    },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as GraphQLResponse<T>['body'], text };
}

/** The single error's code (and field), for compact assertions. */
export function errorOf(res: GraphQLResponse): { code?: unknown; field?: unknown; message?: string } {
  const [error] = res.body.errors ?? [];
  return { code: error?.extensions?.code, field: error?.extensions?.field, message: error?.message };
}
