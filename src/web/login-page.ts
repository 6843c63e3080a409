// GET /login: a plain page to sign in (or sign up) from a browser before using
// GraphiQL. It posts to better-auth's email endpoints on this origin, so the
// session cookie is set for /graphql, then goes to GraphiQL. Self-contained: no
// external assets, and a CSP that allows only its own inline script and style.
import { createHash } from 'node:crypto';
import type http from 'node:http';

const style = `
  body { font: 16px/1.4 system-ui, sans-serif; max-width: 22rem; margin: 4rem auto; padding: 0 1rem; color: #222; }
  label { display: block; margin: 0 0 .8rem; }
  input { display: block; width: 100%; box-sizing: border-box; padding: .45rem; margin-top: .2rem; font: inherit; }
  button { font: inherit; padding: .45rem .9rem; margin-right: .5rem; }
  #status { min-height: 1.4em; color: #444; }
`;

const script = `
  const form = document.getElementById('login');
  const status = document.getElementById('status');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const kind = event.submitter && event.submitter.value === 'sign-up' ? 'sign-up' : 'sign-in';
    const fields = new FormData(form);
    const email = String(fields.get('email')).trim();
    const password = String(fields.get('password'));
    const name = String(fields.get('name')).trim() || email.split('@')[0];
    const body = kind === 'sign-up' ? { email, password, name } : { email, password };
    status.textContent = kind === 'sign-up' ? 'Creating your account…' : 'Signing in…';
    try {
      const res = await fetch('/api/auth/' + kind + '/email', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        credentials: 'same-origin',
        body: JSON.stringify(body),
      });
      if (res.ok) return location.assign('/graphql');
      const answer = await res.json().catch(() => ({}));
      status.textContent = res.status === 429 ? 'Too many attempts: wait a minute and try again.' : answer.message || 'Failed (HTTP ' + res.status + ').';
    } catch (error) {
      status.textContent = 'The server did not answer: ' + error.message;
    }
  });
`;

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Brokerage credentials API</title>
<style>${style}</style>
</head>
<body>
<h1>Sign in</h1>
<form id="login">
  <label>Email <input name="email" type="email" autocomplete="username" required></label>
  <label>Password <input name="password" type="password" autocomplete="current-password" minlength="8" required></label>
  <label>Name <small>(new accounts only; optional)</small> <input name="name" autocomplete="name"></label>
  <button type="submit" value="sign-in">Sign in</button>
  <button type="submit" value="sign-up">Create account</button>
</form>
<p id="status" role="status"></p>
<p>Then explore the API in <a href="/graphql">GraphiQL</a>.</p>
<script>${script}</script>
</body>
</html>
`;

const headers = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': `default-src 'none'; script-src ${sha256(script)}; style-src ${sha256(style)}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function sendLoginPage(res: http.ServerResponse): void {
  res.writeHead(200, headers);
  res.end(html);
}
