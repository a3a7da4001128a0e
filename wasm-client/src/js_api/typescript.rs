//! Hand-written TypeScript declarations: wasm-bindgen types every `JsValue` as `any`, so the
//! options, events, packets and errors are declared here and land in `aviary_mqtt.d.ts`.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = r#"
/** MQTT 5 user properties: repeated keys are arrays. */
export type UserProperties = Record<string, string | string[]>;

/** MQTT 5 message properties (PUBLISH and will). */
export interface MessageProperties {
  payloadFormatIndicator?: boolean;
  messageExpiryInterval?: number;
  contentType?: string;
  responseTopic?: string;
  correlationData?: Uint8Array | string;
  userProperties?: UserProperties;
}

/** The last will, published by the broker if the client vanishes without `end()`. */
export interface WillOptions {
  topic: string;
  payload: string | Uint8Array | ArrayBuffer;
  qos?: 0 | 1 | 2;
  retain?: boolean;
  properties?: MessageProperties & { willDelayInterval?: number };
}

/** MQTT 5 CONNECT properties. */
export interface ConnectProperties {
  sessionExpiryInterval?: number;
  receiveMaximum?: number;
  maximumPacketSize?: number;
  topicAliasMaximum?: number;
  requestResponseInformation?: boolean;
  requestProblemInformation?: boolean;
  userProperties?: UserProperties;
  authenticationMethod?: string;
  authenticationData?: Uint8Array | string;
}

/** Options of `connect()`; names and defaults follow MQTT.js. */
export interface ConnectOptions {
  /** Default: a random `aviary_…` id, unique per client (and so per tab). */
  clientId?: string;
  /** 4 (MQTT 3.1.1, the default) or 5. */
  protocolVersion?: 4 | 5;
  /** Clean session / clean start. Default true. */
  clean?: boolean;
  /** Same as `clean`, with the MQTT 5 name. */
  cleanStart?: boolean;
  /** Keep-alive in seconds (0 disables). Default 60. */
  keepalive?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: WillOptions;
  properties?: ConnectProperties;
  /** Milliseconds for the WebSocket to open and CONNACK to arrive. Default 30000. */
  connectTimeout?: number;
  /** First reconnect backoff window in ms (doubling, with jitter); 0 disables reconnecting. Default 1000. */
  reconnectPeriod?: number;
  /** Largest reconnect backoff window in ms. Default 30000. */
  reconnectMaxPeriod?: number;
  /** Subscribe again after a reconnect when the broker kept no session. Default true. */
  resubscribe?: boolean;
  /** Bounds of the offline queue; when full, the oldest message is dropped (its promise rejects with QUEUE_FULL). */
  offlineQueue?: { maxMessages?: number; maxBytes?: number };
  /** Called before every connection attempt; may return a new URL (or a promise of one), e.g. with a fresh token. */
  transformWsUrl?: (url: string, attempt: number) => string | Promise<string> | undefined;
  /**
   * MQTT 5 enhanced authentication (with `properties.authenticationMethod`): answers each
   * AUTH challenge of the broker with the next Authentication Data (bytes, or a string sent as
   * UTF-8); may be async. A throw or rejection fails the attempt. Called once more with
   * `done = true` and the CONNACK's Authentication Data (e.g. SCRAM's server signature), if
   * any: its answer is ignored, but a throw or rejection ends the client and rejects
   * `connect()`, which resolves only after that check.
   */
  authenticate?: (method: string, data: Uint8Array, done?: boolean) =>
    Uint8Array | string | undefined | Promise<Uint8Array | string | undefined>;
}

export interface PublishOptions {
  qos?: 0 | 1 | 2;
  retain?: boolean;
  properties?: MessageProperties;
}

export interface SubscribeOptions {
  qos?: 0 | 1 | 2;
  /** No Local (MQTT 5). */
  nl?: boolean;
  /** Same as `nl`. */
  noLocal?: boolean;
  /** Retain As Published (MQTT 5). */
  rap?: boolean;
  /** Same as `rap`. */
  retainAsPublished?: boolean;
  /** Retain Handling (MQTT 5): 0 send, 1 send if new, 2 do not send. */
  rh?: 0 | 1 | 2;
  /** Same as `rh`. */
  retainHandling?: 0 | 1 | 2;
  /**
   * MQTT 5 subscription identifier (1 to 268435455) for every filter of this call: the broker
   * sends it back with each matching message, as `packet.properties.subscriptionIdentifier`.
   */
  subscriptionIdentifier?: number;
  /** MQTT 5 user properties of the SUBSCRIBE packet. */
  userProperties?: UserProperties;
}

export interface UnsubscribeOptions {
  /** MQTT 5 user properties of the UNSUBSCRIBE packet. */
  userProperties?: UserProperties;
}

export interface EndOptions {
  /** Milliseconds a graceful end waits for in-flight QoS 1/2 messages. Default 5000. */
  timeout?: number;
}

export interface Granted { topic: string; qos: number }

export interface PublishPacket {
  cmd: "publish";
  topic: string;
  payload: Uint8Array;
  qos: 0 | 1 | 2;
  retain: boolean;
  dup: boolean;
  messageId?: number;
  /** `subscriptionIdentifier`: the matching subscription's identifier, an array when several matched. */
  properties?: MessageProperties & { subscriptionIdentifier?: number | number[] };
}

export interface ConnackPacket {
  cmd: "connack";
  sessionPresent: boolean;
  reasonCode: number;
  returnCode: number;
  properties: {
    sessionExpiryInterval?: number; receiveMaximum?: number; maximumQoS?: number;
    retainAvailable?: boolean; maximumPacketSize?: number; assignedClientIdentifier?: string;
    topicAliasMaximum?: number; reasonString?: string; serverKeepAlive?: number;
    wildcardSubscriptionAvailable?: boolean; sharedSubscriptionAvailable?: boolean;
    userProperties?: UserProperties;
    authenticationMethod?: string; authenticationData?: Uint8Array;
  };
}

export type MqttErrorCode =
  | "CONNECTION_REFUSED" | "CONNECT_TIMEOUT" | "KEEPALIVE_TIMEOUT" | "CONNECTION_LOST"
  | "SERVER_DISCONNECT" | "PROTOCOL_ERROR" | "PUBLISH_FAILED" | "SUBSCRIBE_FAILED"
  | "UNSUBSCRIBE_FAILED" | "QUEUE_FULL" | "CLIENT_ENDED" | "INVALID_ARGUMENT";

/** Every rejection and `error` event is one of these. */
export interface MqttError extends Error {
  name: "MqttError";
  code: MqttErrorCode;
  /** The MQTT reason code the broker sent (3.1.1 CONNACK codes mapped to MQTT 5). */
  reasonCode?: number;
}

export interface MqttClientEvents {
  connect: (connack: ConnackPacket) => void;
  reconnect: () => void;
  close: () => void;
  offline: () => void;
  error: (error: MqttError) => void;
  end: () => void;
  /** `packet` is not built (undefined) for listeners declaring exactly one or two parameters: it is the costly part. */
  message: (topic: string, payload: Uint8Array, packet: PublishPacket) => void;
}

export class MqttClient {
  private constructor();
  free(): void;
  on<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): void;
  once<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): void;
  off<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): void;
  subscribe(topic: string | string[] | Record<string, SubscribeOptions>, options?: SubscribeOptions): Promise<Granted[]>;
  unsubscribe(topic: string | string[], options?: UnsubscribeOptions): Promise<void>;
  publish(topic: string, payload: string | Uint8Array | ArrayBuffer, options?: PublishOptions): Promise<void>;
  /**
   * Sends DISCONNECT and closes; resolves once ended. Graceful by default: outgoing QoS 1/2
   * messages in flight are first given `options.timeout` ms to be acknowledged (new operations
   * reject meanwhile). `force` drops them at once. Whatever is left rejects with CLIENT_ENDED.
   */
  end(force?: boolean, options?: EndOptions): Promise<void>;
  readonly connected: boolean;
  readonly reconnecting: boolean;
  /**
   * Milliseconds until the next connection attempt while the client waits out its reconnect
   * backoff (read it in a `close` or `offline` listener for a countdown); `null` while
   * connected, connecting, offline (no network) or ended.
   */
  readonly nextAttemptInMs: number | null;
  readonly queuedCount: number;
  readonly clientId: string;
  readonly timerInWorker: boolean;
}

/** Connects and resolves once the broker accepts; rejects with an MqttError if the first attempt fails. */
export function connect(url: string, options?: ConnectOptions): Promise<MqttClient>;
"#;
