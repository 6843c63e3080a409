// The short-transaction steps of an operation that waits on the network with
// no database transaction open (verifyCredential; see
// src/graphql/rls-transaction.ts for how GraphQL runs such a field). Here, in
// src/db, so that services and the engine API depend on the database layer
// and never on GraphQL.
import type { ScopedDb } from './rls.ts';

/** What a field that runs outside the operation's transaction gets instead. */
export interface OperationSteps {
  /** Runs `work` in a short transaction of its own, scoped to the viewer. Not once the operation's is open. */
  step<T>(work: (db: ScopedDb) => Promise<T>): Promise<T>;
  /**
   * Opens the operation's transaction (once): ctx.db becomes it, and the rest
   * of the operation (this field's write, its selection) runs in it. It
   * commits when the operation ends without errors, as usual.
   */
  openOperationTransaction(): Promise<ScopedDb>;
}
