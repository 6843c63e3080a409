// GraphiQL and the /login page in a real headless Chromium (Debian's, driven
// by playwright-core): sign in on the same origin, run a query in GraphiQL with
// the session cookie, read the answer off the page. Without Chromium this fails
// with the instruction to install it; SKIP_BROWSER_TESTS=1 skips it explicitly.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { gql, type Session, signUp, uniqueEmail } from '../support/client.ts';
import { dbKind } from '../support/databases.ts';
import { startServer, type TestServer } from '../support/server.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(import.meta.dirname, '../../test-artifacts');
const QUERY = '{ viewer { email } accounts { accountName } }';
// GraphiQL is one ~9 MB page of inline JavaScript: give it time on a busy machine.
const PAGE_TIMEOUT = 90_000;

/**
 * A failure whose message is what to do, without a stack or code frame (the
 * runner prints the frames of error.stack): how to install Chromium, or how
 * to run the tests without it.
 */
function instruction(problem: string): Error {
  const error = new Error(
    `${problem} This test drives Debian's Chromium: apt-get install -y chromium ` +
      '(or CHROMIUM_PATH=/path/to/chromium); to run the tests without it: SKIP_BROWSER_TESTS=1 npm test',
  );
  error.stack = error.message;
  return error;
}

function launch(): Promise<Browser> {
  return chromium
    .launch({
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
      ],
    })
    .catch((error: Error) => {
      // Present but not starting (missing libraries, a broken install): playwright's first line says why.
      throw instruction(`Chromium at ${CHROMIUM} did not start: ${error.message.split('\n')[0]}.`);
    });
}

let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;

describe.skipIf(process.env.SKIP_BROWSER_TESTS === '1')(
  `GraphiQL in Chromium (${dbKind})`,
  { timeout: 4 * PAGE_TIMEOUT },
  () => {
    beforeAll(async () => {
      if (!existsSync(CHROMIUM)) throw instruction(`Chromium not found at ${CHROMIUM}.`);
      // PORT=0: the server trusts the origin of the port it actually bound.
      const [started, launched] = await Promise.allSettled([startServer(), launch()]);
      // Whatever failed, what did start is closed in afterAll.
      if (started.status === 'fulfilled') server = started.value;
      if (launched.status === 'fulfilled') browser = launched.value;
      for (const outcome of [launched, started]) if (outcome.status === 'rejected') throw outcome.reason;
    });

    afterAll(async () => {
      await browser?.close();
      await server?.close();
    });

    beforeEach(async () => {
      context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      context.setDefaultTimeout(PAGE_TIMEOUT);
      page = await context.newPage();
    });

    afterEach(async () => {
      await context?.close();
    });

    async function signInOnLoginPage(email: string, password: string, button: 'sign-in' | 'sign-up', name?: string) {
      await page.goto(`${server.url}/login`);
      await page.fill('input[name=email]', email);
      await page.fill('input[name=password]', password);
      if (name) await page.fill('input[name=name]', name);
      await page.click(`button[value=${button}]`);
    }

    /** Runs what is in GraphiQL's editor and returns the JSON the response pane then shows. */
    async function runInGraphiQL(): Promise<unknown> {
      // The pane wraps long lines; none of the values here contain whitespace.
      const responseText = async () => (await page.locator('.graphiql-response').innerText()).replace(/\s+/g, '');
      // The answer to this click, not whatever the pane showed before it.
      const before = await responseText();
      await page.click('.graphiql-execute-button');
      let answer: unknown;
      await expect
        .poll(
          async () => {
            const text = await responseText();
            if (text === before) return false;
            try {
              answer = JSON.parse(text);
              return true;
            } catch {
              return false;
            }
          },
          { timeout: PAGE_TIMEOUT },
        )
        .toBe(true);
      return answer;
    }

    it('runs a query in GraphiQL: refused before signing in on /login, answered with the session cookie after', async () => {
      const session: Session = await signUp(server.url);
      await gql(server.url, 'mutation { createAccount(input: { accountName: "Browser" }) { id } }', undefined, session);

      await page.goto(`${server.url}/graphql?query=${encodeURIComponent(QUERY)}`);
      expect(await runInGraphiQL()).toMatchObject({ errors: [{ extensions: { code: 'UNAUTHENTICATED' } }] });

      await signInOnLoginPage(session.email, session.password, 'sign-in');
      await page.waitForURL(`${server.url}/graphql`, { waitUntil: 'commit' });
      await page.goto(`${server.url}/graphql?query=${encodeURIComponent(QUERY)}`);
      expect(await runInGraphiQL()).toEqual({
        data: { viewer: { email: session.email }, accounts: [{ accountName: 'Browser' }] },
      });

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTIFACTS, 'graphiql.png') });
    });

    it('creates an account on /login, lands in GraphiQL, and the cookie session is the new user', async () => {
      const email = uniqueEmail('browser');
      await signInOnLoginPage(email, 'a long enough password', 'sign-up', 'Page User');
      await page.waitForURL(`${server.url}/graphql`, { waitUntil: 'commit' });
      expect((await context.cookies()).map((c) => c.name)).toContain('better-auth.session_token');
      const viewer = await page.evaluate(async (query) => {
        const res = await fetch('/graphql', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ query }),
        });
        return res.json();
      }, '{ viewer { email name } }');
      expect(viewer).toEqual({ data: { viewer: { email, name: 'Page User' } } });

      // GraphiQL, where sign-up landed, opens with this API's overview document,
      // not the generic welcome text. No second page.goto: one right after the
      // redirect can cut the first load short, and GraphiQL then restores the
      // empty tab it saved (seen under load: an editor holding only line "1").
      await expect
        // The editor renders spaces as no-break spaces.
        .poll(async () => (await page.locator('.graphiql-query-editor').innerText()).replace(/\s+/g, ' '), {
          timeout: PAGE_TIMEOUT,
        })
        .toContain('query Overview');
      expect(await runInGraphiQL()).toEqual({ data: { viewer: { id: expect.any(String), email }, accounts: [] } });
    });

    it('shows why a sign-in failed and stays on /login', async () => {
      await signInOnLoginPage(uniqueEmail(), 'not the password', 'sign-in');
      await expect
        .poll(() => page.locator('#status').innerText(), { timeout: PAGE_TIMEOUT })
        .toMatch(/invalid email or password/i);
      expect(new URL(page.url()).pathname).toBe('/login');
    });
  },
);
