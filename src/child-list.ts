/**
 * The list of live children that every cancelable context, every bridge to a
 * user's context and every outside signal's followers keep. The list is
 * intrusive (the links live in the child), so linking and unlinking are O(1)
 * and allocate nothing.
 */

/** ChildNode is anything that can be in such a list: a child context, an afterFunc registration, a signal follower. */
export interface ChildNode {
  /** The neighbours in the owner's list; set by link, cleared by unlink or by the owner's cancel. */
  _prev: ChildNode | null;
  _next: ChildNode | null;
  /** The list this node is in; set by link, cleared by unlink or when the owner fires. */
  _owner: Owner | null;
}

/** Listener is a ChildNode that is not a context: told once, when its owner is done. */
export interface Listener extends ChildNode {
  _fire(error: Error, cause: unknown): void;
}

/** Owner is a list head: a cancelable context, the bridge that follows a user's context, or a signal's followers. */
export interface Owner {
  /** The first live child, or null; changed by every link and unlink, cleared when the owner fires. */
  _head: ChildNode | null;
  /** How many children the list holds now. */
  _count: number;
}

/**
 * link puts child at the head of owner's list and returns the new count.
 * The owner is written first: a frozen owner throws before anything changed.
 */
export function link(owner: Owner, child: ChildNode): number {
  const head = owner._head;
  owner._head = child;
  child._next = head;
  child._owner = owner;
  if (head !== null) head._prev = child;
  return ++owner._count;
}

/** unlink takes child out of the list it is in. The child is written first, for the same reason. */
export function unlink(owner: Owner, child: ChildNode): void {
  const prev = child._prev;
  const next = child._next;
  child._owner = null;
  child._prev = null;
  child._next = null;
  if (prev === null) owner._head = next;
  else prev._next = next;
  if (next !== null) next._prev = prev;
  owner._count--;
}

/** detachAll empties owner's list and returns what was in it, in list order: firing one may unlink others. */
export function detachAll(owner: Owner): ChildNode[] {
  const children: ChildNode[] = [];
  for (let c = owner._head; c !== null;) {
    const next: ChildNode | null = c._next;
    try {
      c._prev = c._next = null;
      c._owner = null;
    } catch {
      // A child the user froze keeps its links; firing it skips it (see cancelTree), and the walk
      // may follow its stale _next to a sibling early: one this same list fires anyway.
    }
    children.push(c);
    c = next;
  }
  owner._head = null;
  owner._count = 0;
  return children;
}
