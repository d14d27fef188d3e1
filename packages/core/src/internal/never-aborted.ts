/** A signal that never aborts, shared by every call that was given none. */
export const neverAbortedSignal: AbortSignal = new AbortController().signal;
