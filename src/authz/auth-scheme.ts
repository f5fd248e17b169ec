/** The authorization scheme credentials were presented with: RFC 6750 `Bearer` or RFC 9449 `DPoP`. */
export type AuthScheme = 'Bearer' | 'DPoP';
