import type { HtmlReply } from './reply.js';

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. Development only. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => ESCAPES[character]!);
}

const STYLE = `body{font:16px/1.4 system-ui,sans-serif;max-width:26rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem}.dev{background:#fff3cd;border:1px solid #e0c060;padding:.5rem .75rem;border-radius:4px}
label{display:block;margin-top:.75rem}input{font-size:1rem;padding:.3rem;width:100%;box-sizing:border-box}
button{margin-top:1rem;font-size:1rem;padding:.4rem 1.2rem}#error{color:#a00;font-weight:bold}
#demo-otp{font:bold 1.6rem monospace;letter-spacing:.2em}`;

/**
 * Builds the response headers of every sign-in page, once at start-up. The pages have no scripts and load
 * nothing; they may only be posted back to this provider, and framed nowhere (clickjacking, RFC 6749 section
 * 10.13). Chrome applies `form-action` to the redirect that follows a form post, so the browser app's origins
 * are listed too. Development only.
 */
export function pageHeaders(redirectOrigins: readonly string[]): Readonly<Record<string, string>> {
  const formAction = ["'self'", ...redirectOrigins].join(' ');
  return Object.freeze({
    'content-security-policy': `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'x-content-type-options': 'nosniff',
  });
}

/**
 * A complete page: `title` is text (escaped here), `body` is markup the caller has already escaped.
 * Development only.
 */
export function htmlPage(
  status: number,
  title: string,
  body: string,
  headers: Readonly<Record<string, string>>,
): HtmlReply {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<p class="dev">Bank demo identity provider (development only)</p>
${body}
</body>
</html>
`;
  return { kind: 'html', status, html, headers };
}
