// A fetch that records each request's method and GraphQL operation name, so a
// test can tell which calls a client made and which it answered from its cache.
export interface RecordedRequest {
  method: string;
  operationName: string | undefined;
}

export function recordingFetch(): { fetch: typeof fetch; requests: RecordedRequest[] } {
  const requests: RecordedRequest[] = [];
  const recording: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    const operationName =
      request.method === 'GET'
        ? (new URL(request.url).searchParams.get('operationName') ?? undefined)
        : ((JSON.parse(await request.clone().text()) as { operationName?: string }).operationName ?? undefined);
    requests.push({ method: request.method, operationName });
    return fetch(request);
  };
  return { fetch: recording, requests };
}
