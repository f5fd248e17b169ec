/** The parts of `envoy.service.auth.v3.CheckRequest` this service reads, as proto-loader decodes them. */
export interface CheckRequestMessage {
  attributes?: {
    request?: {
      http?: {
        id?: string;
        method?: string;
        headers?: Record<string, string>;
        header_map?: { headers?: { key?: string; value?: string; raw_value?: Buffer | Uint8Array }[] } | null;
        path?: string;
        host?: string;
      } | null;
    } | null;
    /** The downstream peer; `certificate` only when the filter sets `include_peer_certificate`. */
    source?: { certificate?: string } | null;
    /** Set per route or virtual host in Envoy (`ExtAuthzPerRoute.check_settings.context_extensions`). */
    context_extensions?: Record<string, string> | null;
  } | null;
}

/** `envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD`. */
export const APPEND_IF_EXISTS_OR_ADD = 0;
/** `envoy.config.core.v3.HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD`. */
export const OVERWRITE_IF_EXISTS_OR_ADD = 2;

export interface HeaderValueOptionMessage {
  header: { key: string; value: string };
  append_action: number;
}

/** `envoy.service.auth.v3.CheckResponse`, as this service writes it. */
export interface CheckResponseMessage {
  status: { code: number; message: string };
  denied_response?: { status: { code: number }; headers: HeaderValueOptionMessage[]; body: string };
  ok_response?: { headers: HeaderValueOptionMessage[]; headers_to_remove: string[] };
}
