/** Stable codes for faults in starting the development identity provider. Development only. */
export type DevIdpErrorCode = 'ERR_DEV_IDP_OPTIONS'; // an option is out of range or malformed

/** The development identity provider cannot start as configured. Development only. */
export class DevIdpError extends Error {
  override readonly name = 'DevIdpError';
  readonly code: DevIdpErrorCode;

  constructor(code: DevIdpErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
