/** The `type` of the message the callback page posts to the app window that opened it. */
export const AUTHORIZATION_RESPONSE_MESSAGE = 'bank-app:authorization-response';
