import { Body, Controller, Inject, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import {
  jsonResponse,
  problemResponse,
  retryAfterSeconds,
  type HttpResponse,
} from '@breakwater/core';
import { IdentificationService, type Identification } from './identification.service';

/** Largest image accepted, decoded. */
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * `POST /api/identify` with `{ "image": "<base64>" }`:
 * - 200 `{ suggestions, partial, cached, providers, imageHash }`;
 * - 404 problem+json when no provider found a plant;
 * - 503 problem+json with `Retry-After` when both circuits are open (the shorter open time);
 * - 502 problem+json when no provider could answer and a call failed;
 * - 400 problem+json for a missing or malformed image.
 */
@Controller('api')
export class IdentificationController {
  constructor(
    @Inject(IdentificationService) private readonly identification: IdentificationService,
  ) {}

  @Post('identify')
  async identify(@Body() body: unknown, @Res() res: Response): Promise<void> {
    const image = decodeImage(body);
    const answer =
      typeof image === 'string'
        ? problemResponse(400, 'Bad Request', image)
        : toHttp(await this.identification.identify(image));
    res.status(answer.status).set(answer.headers).send(answer.body);
  }
}

/** The image bytes, or why the body is refused. */
function decodeImage(body: unknown): Buffer | string {
  const image = (body as { image?: unknown } | null | undefined)?.image;
  if (typeof image !== 'string' || image === '') {
    return 'Send a JSON body { "image": "<base64>" }';
  }
  if (image.length % 4 !== 0 || !BASE64.test(image)) return '"image" is not base64';
  const bytes = Buffer.from(image, 'base64');
  if (bytes.length > MAX_IMAGE_BYTES) return `"image" is larger than ${MAX_IMAGE_BYTES} bytes`;
  return bytes;
}

function toHttp(identification: Identification): HttpResponse {
  if (identification.kind === 'answered') {
    const { result } = identification;
    if (result.suggestions.length > 0) return jsonResponse(200, result);
    return problemResponse(404, 'Not Found', 'No plant found in the image', {
      imageHash: result.imageHash,
      partial: result.partial,
      providers: result.providers,
    });
  }
  const { retryAfterMs, providers } = identification;
  if (retryAfterMs === undefined) {
    return problemResponse(502, 'Bad Gateway', 'No identification provider could answer', {
      providers,
    });
  }
  const seconds = retryAfterSeconds(retryAfterMs);
  return problemResponse(
    503,
    'Service Unavailable',
    'Both identification providers are unavailable: their circuits are open',
    { providers, retryAfter: seconds },
    { 'retry-after': String(seconds) },
  );
}
