// The server-side half of a deadline: a query sent with the remaining time as
// its `statement_timeout`, in the same round trip as the query itself.
//
// Measured alternatives (PostgreSQL 18, loopback): `BEGIN; SET LOCAL …;
// query; COMMIT` costs four round trips (~100–130 µs against ~40 µs), and a
// session-level `SET` would outlive the query on a pooled connection and
// stop somebody else's statement. So the setting rides in front of the query
// and ends with the query's own implicit transaction:
// - simple protocol (no parameters): one Query message
//   `SET LOCAL statement_timeout = N; <text>`, which PostgreSQL runs as one
//   implicit transaction block, so `SET LOCAL` holds for `<text>` and is
//   undone after it;
// - extended protocol (parameters): Parse/Bind/Execute of
//   `SELECT set_config('statement_timeout', 'N', true)` before the query's own
//   Parse/Bind/Describe/Execute, all before one Sync (one transaction, so the
//   local setting holds until Sync and is undone there; `set_config` rather
//   than `SET LOCAL`, which would warn outside a transaction block).
// Inside a transaction (`BEGIN` already sent) the same prefix is a plain
// `SET LOCAL`, which holds until COMMIT or ROLLBACK. So until then, a later
// statement of ours without a deadline gets the prefix
// `SET LOCAL statement_timeout TO DEFAULT` instead (run.ts): the session's
// configured value, what it would have had unless the caller ran a `SET` of
// their own (restoring that exactly would mean reading the value before
// every timed statement in a transaction: one more reply to hide each time).
//
// Transaction control gets no prefix; the CancelRequest alone enforces its
// deadline:
// - what ends a transaction (COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT, …): in a
//   failed transaction PostgreSQL refuses everything else, the prefix
//   included (25P02), so it would stop the very ROLLBACK that recovers;
// - what opens one (BEGIN, START TRANSACTION): it turns the implicit
//   transaction into the caller's explicit one, so the `SET LOCAL` would
//   outlive the query and cap every later statement of that transaction;
// - SAVEPOINT and RELEASE, for the same rule (they take no time);
// - what may commit in its body (CALL of a procedure, a DO block): inside the
//   implicit transaction it fails with 2D000, though it runs without one.
// Outside a transaction, neither does what PostgreSQL allows only inside one
// (LOCK, DECLARE CURSOR): the implicit transaction would let it run, where
// without a deadline it fails with 25P01 (a lock that protects nothing).
//
// node-postgres has no hook for this, so the query is a subclass of the
// client's own Query class (`Client.Query`, so this module imports nothing of
// `pg` at run time) that writes the prefix and hides its replies.

/** The part of node-postgres's Query class this module builds on (pg 8). */
interface PgQuery {
  text: string;
  callback: ((error: Error | null, result: unknown) => void) | undefined;
  requiresPreparation(): boolean;
  prepare(connection: unknown): void;
  handleDataRow(message: unknown): void;
  handleCommandComplete(message: unknown, connection: unknown): void;
  handleError(error: unknown, connection: unknown): void;
}

type PgQueryClass = new (text: string, values?: unknown[]) => PgQuery;

/** The largest value `statement_timeout` takes (an int of milliseconds); longer deadlines are left to the client. */
const MAX_STATEMENT_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * statementTimeoutFor turns a deadline's time left (ms) into the value of a
 * statement_timeout: whole ms, at least 1 (0 would mean no limit), at most
 * MAX_STATEMENT_TIMEOUT_MS (a farther deadline is left to the CancelRequest).
 * Both drivers' prefixes send it.
 */
export function statementTimeoutFor(msLeft: number): number {
  return Math.min(MAX_STATEMENT_TIMEOUT_MS, Math.max(1, Math.ceil(msLeft)));
}

/** How close to its deadline a context is when a 57014 from our statement_timeout is taken as that deadline. */
const DEADLINE_SLACK_MS = 50;

/**
 * nearDeadline tells whether `deadline` (epoch ms; undefined: none) is at
 * most DEADLINE_SLACK_MS away or past. It answers two questions:
 * - a 57014 that comes now: our statement_timeout, and so the deadline;
 * - a connection whose timed statement ended now: it may hold a leaked
 *   timeout (see {@link CLEAR_LEAKED_TIMEOUT}).
 */
export function nearDeadline(deadline: number | undefined): boolean {
  return deadline !== undefined && deadline - Date.now() <= DEADLINE_SLACK_MS;
}

/**
 * The statement that clears a leaked statement timeout: an empty query,
 * which the server answers at once (EmptyQueryResponse), or with the leaked
 * 57014.
 *
 * PostgreSQL can carry a statement_timeout over to the next command: when
 * the timer fires at the very end of a statement, after its last check for
 * interrupts and before the timer is disarmed (COMMIT and ROLLBACK hold
 * interrupts while they work, which widens the window), the pending cancel
 * survives, and the connection's next command fails with "canceling
 * statement due to statement timeout" although it has no timeout at all.
 * Measured on PostgreSQL 18 with 1 ms timeouts on a loaded machine: about 1
 * in 20,000 timed commands, in both drivers. That next command could be
 * another caller's, on a pooled connection. So a connection whose timed
 * statement (or transaction) ended near its deadline runs this first, and
 * only then serves anyone else. Far from the deadline the timer cannot have
 * fired, and nothing extra is sent.
 */
export const CLEAR_LEAKED_TIMEOUT = "";

/** One subclass per Query class seen (normally one: the app's `pg`). */
const subclasses = new WeakMap<PgQueryClass, PgQueryClass>();

/**
 * timedQueryClass returns the subclass of `Query` that sends a query with
 * its own `statement_timeout`, or undefined when `Query` is not node-postgres's
 * Query (pg-native, or a client of some other shape): then no server deadline.
 */
function timedQueryClass(Query: unknown): PgQueryClass | undefined {
  if (typeof Query !== "function") return undefined;
  const proto = (Query as { prototype?: Partial<PgQuery> }).prototype;
  if (
    proto === undefined ||
    typeof proto.prepare !== "function" ||
    typeof proto.requiresPreparation !== "function" ||
    typeof proto.handleCommandComplete !== "function" ||
    typeof proto.handleDataRow !== "function" ||
    typeof proto.handleError !== "function"
  ) {
    return undefined;
  }
  const known = subclasses.get(Query as PgQueryClass);
  if (known !== undefined) return known;
  const Base = Query as PgQueryClass;
  class TimedQuery extends Base {
    /** The statement that sets the timeout (extended protocol) or "SET" (simple), until its reply was skipped; then null. */
    _setting: string | null = null;
    /** How many characters the prefix put in front of the caller's text (simple protocol; 0: none). */
    _shift = 0;
    override prepare(connection: unknown): void {
      if (this._setting !== null) {
        const con = connection as {
          parse(m: object): void;
          bind(m: object): void;
          execute(m: object): void;
        };
        con.parse({ text: this._setting });
        con.bind({});
        con.execute({});
      }
      super.prepare(connection);
    }
    override handleDataRow(message: unknown): void {
      // set_config's one row (it has no RowDescription: the prefix sends no Describe).
      if (this._setting !== null) return;
      super.handleDataRow(message);
    }
    override handleCommandComplete(message: unknown, connection: unknown): void {
      if (this._setting !== null) {
        this._setting = null; // the prefix is done; what follows is the caller's
        return;
      }
      super.handleCommandComplete(message, connection);
    }
    override handleError(error: unknown, connection: unknown): void {
      // An error's position (1-based, in characters, a string in node-postgres's
      // DatabaseError) counts from the start of the text the server got, the prefix
      // included: count it in the caller's text, as without a deadline. Positions
      // inside the prefix are left as they are; internalPosition points into an
      // internal query (a function body), not into this text.
      const at = (error as { position?: unknown } | null)?.position;
      if (this._shift > 0 && typeof at === "string" && Number(at) > this._shift) {
        (error as { position: string }).position = String(Number(at) - this._shift);
      }
      super.handleError(error, connection);
    }
  }
  subclasses.set(Base, TimedQuery);
  return TimedQuery;
}

/**
 * timedQuery builds a query for `client.query()` that runs `text` with
 * `statement_timeout` set to `ms` for this statement only (inside a
 * transaction: until the transaction ends), or, when `ms` is null, set back
 * to the session's configured value (`TO DEFAULT`, in a transaction only),
 * calling `callback` with node-postgres's usual (error, result). It returns
 * undefined when the client's Query class is not one this module knows.
 */
export function timedQuery(
  Query: unknown,
  text: string,
  values: unknown[] | undefined,
  ms: number | null,
  callback: (error: Error | null, result: unknown) => void,
): PgQuery | undefined {
  const Timed = timedQueryClass(Query);
  if (Timed === undefined) return undefined;
  const query = new Timed(text, values) as PgQuery & { _setting: string | null; _shift: number };
  query.callback = callback;
  const timeout = ms === null ? null : statementTimeoutFor(ms);
  // set_config has no DEFAULT. SET LOCAL warns outside a transaction, where the
  // default is sent only to a query queued before the client saw its transaction
  // end (its status is read at submit), and the warning is all that costs.
  const setting =
    timeout === null
      ? "SET LOCAL statement_timeout TO DEFAULT"
      : `SET LOCAL statement_timeout = ${timeout}`;
  if (query.requiresPreparation()) {
    query._setting =
      timeout === null ? setting : `SELECT set_config('statement_timeout', '${timeout}', true)`;
  } else {
    query._setting = "SET";
    query.text = `${setting}; ${text}`;
    query._shift = query.text.length - text.length;
  }
  return query;
}

/**
 * The first words of transaction control: what PostgreSQL still runs in a
 * failed transaction (postgres.c, IsTransactionExitStmt: COMMIT, END,
 * ROLLBACK, ABORT, PREPARE TRANSACTION), what opens a transaction (BEGIN,
 * START TRANSACTION), SAVEPOINT and RELEASE, and what may commit or roll
 * back in its body (CALL of a procedure, a DO block): PostgreSQL refuses
 * that inside the implicit transaction that carries the prefix (2D000,
 * "invalid transaction termination"), though it allows it without.
 */
const TRANSACTION_CONTROL = new Set([
  "commit",
  "end",
  "rollback",
  "abort",
  "prepare transaction",
  "begin",
  "start",
  "savepoint",
  "release",
  "call",
  "do",
]);

/**
 * The first words of what PostgreSQL runs only in a transaction block
 * (RequireTransactionBlock: LOCK, DECLARE CURSOR): outside one it fails with
 * 25P01, but the implicit transaction that carries the prefix counts as one,
 * so with the prefix it would run, and the lock or cursor end at once.
 */
const TRANSACTION_ONLY = new Set(["lock", "declare"]);

/** A cheap first look: text without any of the words of both sets needs no scan. */
const MAY_CONTROL =
  /\b(?:commit|end|rollback|abort|prepare|begin|start|savepoint|release|call|do|lock|declare)\b/i;

/**
 * controlsTransaction tells whether one of the statements in `text` is one
 * that must run without the statement_timeout prefix: transaction control
 * (see TRANSACTION_CONTROL) always, and, when `idle` (the client is in no
 * transaction), what runs only in a transaction block (TRANSACTION_ONLY),
 * so it fails as it does without a deadline. It reads the first word of each
 * statement, skipping comments and what is quoted ('…', E'…', "…",
 * $tag$…$tag$), so a keyword in a string or a function body does not count.
 * When unsure (a statement that only looks like one, as the END of `BEGIN
 * ATOMIC … END`) it says true: the statement then runs without a server
 * deadline, and the CancelRequest still enforces the context's.
 */
export function controlsTransaction(text: string, idle: boolean): boolean {
  if (!MAY_CONTROL.test(text)) return false;
  return anyStatement(
    text,
    (key) => TRANSACTION_CONTROL.has(key) || (idle && TRANSACTION_ONLY.has(key)),
  );
}

/** The first words of what opens a transaction block. */
const OPENS_TRANSACTION = new Set(["begin", "start"]);

/**
 * opensTransaction tells whether one of the statements in `text` opens a
 * transaction block (BEGIN, START TRANSACTION), read as controlsTransaction
 * reads it.
 */
export function opensTransaction(text: string): boolean {
  return (
    /\b(?:begin|start)\b/i.test(text) && anyStatement(text, (key) => OPENS_TRANSACTION.has(key))
  );
}

/**
 * anyStatement tells whether `match` holds for the key of one of the
 * statements in `text`: its first word in lower case, or two words for
 * PREPARE TRANSACTION ("prepare transaction").
 */
function anyStatement(text: string, match: (key: string) => boolean): boolean {
  const n = text.length;
  let i = 0;
  let atStart = true; // no word of the current statement read yet
  while (i < n) {
    const ch = text[i] as string;
    const next = text[i + 1];
    if (ch === "-" && next === "-") {
      const eol = text.indexOf("\n", i);
      i = eol === -1 ? n : eol + 1;
    } else if (ch === "/" && next === "*") {
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        const pair = text.slice(i, i + 2);
        if (pair === "/*") depth++;
        else if (pair === "*/") depth--;
        i += pair === "/*" || pair === "*/" ? 2 : 1;
      }
    } else if (ch === ";") {
      atStart = true;
      i++;
    } else if (/\s/.test(ch)) {
      i++;
    } else if (ch === "'" || ch === '"') {
      atStart = false;
      // E'…' takes backslash escapes; '' (or "") inside is two quoted runs back to back.
      const escapes = ch === "'" && i > 0 && /[eE]/.test(text[i - 1] as string);
      i++;
      while (i < n && text[i] !== ch) i += escapes && text[i] === "\\" ? 2 : 1;
      i++;
    } else if (ch === "$" && (i === 0 || !/[\w$]/.test(text[i - 1] as string))) {
      atStart = false;
      const tag = /^\$(?:[A-Za-z_\u0080-\uffff][\w\u0080-\uffff]*)?\$/.exec(text.slice(i, i + 64));
      if (tag === null) {
        i++; // a parameter ($1) or an operator
      } else {
        const end = text.indexOf(tag[0], i + tag[0].length);
        i = end === -1 ? n : end + tag[0].length;
      }
    } else if (/[A-Za-z_]/.test(ch)) {
      const word = /^[A-Za-z_][\w$]*/.exec(text.slice(i, i + 64))![0];
      if (atStart) {
        let key = word.toLowerCase();
        if (key === "prepare") {
          const rest = /^\s+(\w+)/.exec(text.slice(i + word.length, i + word.length + 64));
          key = `prepare ${rest?.[1]?.toLowerCase() ?? ""}`;
        }
        if (match(key)) return true;
        atStart = false;
      }
      i += word.length;
    } else {
      atStart = false;
      i++;
    }
  }
  return false;
}
