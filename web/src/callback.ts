import { authorizationResponseFrom } from './authorization-request.js';
import { AUTHORIZATION_RESPONSE_MESSAGE } from './callback-message.js';

// The redirect_uri page: hands the authorization response to the app window that opened this one, on
// this origin only, and takes the code out of the address bar and history. The app checks state and iss.
const response = authorizationResponseFrom(new URLSearchParams(window.location.search));
history.replaceState(null, '', window.location.pathname);
const status = document.getElementById('callback-status');
const opener = window.opener as Window | null;
if (opener !== null && !opener.closed) {
  opener.postMessage({ type: AUTHORIZATION_RESPONSE_MESSAGE, response }, window.location.origin);
  if (status !== null) status.textContent = 'Signed in. Returning to the bank…';
} else if (status !== null) {
  status.textContent = 'This window is not part of a sign-in the bank app started. You can close it.';
}
