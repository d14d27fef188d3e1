/** Correlation IDs: `X-Request-Id` accepted when well-formed, otherwise generated. */
import { randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';

/** Letters, digits and `._:-`, starting with a letter or digit, at most 128 characters. */
const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Whether a client-supplied request ID can be trusted to be logged and forwarded as is. */
export function isWellFormedRequestId(value: string): boolean {
  return WELL_FORMED.test(value);
}

/**
 * Gives every request an ID: the client's `X-Request-Id` when it is well-formed, else a new
 * UUID. The ID is echoed in the response's `X-Request-Id` and kept for the upstream calls.
 */
export function requestId(): RequestHandler {
  return (req, res, next) => {
    const given = req.get('x-request-id');
    const id = given !== undefined && isWellFormedRequestId(given) ? given : randomUUID();
    res.locals.requestId = id;
    res.setHeader('X-Request-Id', id);
    next();
  };
}

/** The ID {@link requestId} gave the request being answered. */
export function requestIdOf(res: Response): string {
  return res.locals.requestId as string;
}
