/**
 * A response body parsed as JSON, or undefined when it is not JSON or longer than `maxChars` (a server
 * answering far more than expected is treated like one answering nonsense, not buffered into the page).
 */
export async function jsonBody(response: Response, maxChars: number): Promise<unknown> {
  const text = await response.text();
  if (text.length > maxChars) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
