// Types of `aviary-mqtt/compat`, the MQTT.js 5 surface that web code uses. Names follow
// MQTT.js's own declarations, so code typed against "mqtt" type-checks after changing the
// import line; packets and errors are aviary-mqtt's (see aviary_mqtt.d.ts).

import type {
  ConnackPacket, ConnectProperties, Granted, MessageProperties, MqttError, PublishPacket,
  UserProperties,
} from "../web/aviary_mqtt.js";

export type { ConnackPacket, ConnectProperties, MessageProperties, MqttError, UserProperties };
export type QoS = 0 | 1 | 2;

/** A delivered payload: a Node Buffer in Node; in browsers a Uint8Array whose `toString()` decodes UTF-8. */
export declare class MqttPayload extends Uint8Array {
  toString(encoding?: "utf8" | "utf-8" | "hex" | "base64" | "latin1" | "binary" | "ascii", start?: number, end?: number): string;
  toJSON(): { type: "Buffer"; data: number[] };
}

/** A publish packet as `message` and `packetreceive` listeners get it. */
export interface IPublishPacket extends Omit<PublishPacket, "payload"> {
  payload: MqttPayload;
}

export interface IClientOptions {
  /** Default: a random `aviary_…` id. */
  clientId?: string;
  /** 4 (MQTT 3.1.1, the default) or 5. MQTT 3.1 (3) is not supported. */
  protocolVersion?: 4 | 5;
  /** Clean session / clean start. Default true. */
  clean?: boolean;
  /** Seconds; 0 disables. Default 60. */
  keepalive?: number;
  username?: string;
  password?: string | Uint8Array;
  will?: {
    topic: string;
    payload: string | Uint8Array | ArrayBuffer;
    qos?: QoS;
    retain?: boolean;
    properties?: MessageProperties & { willDelayInterval?: number };
  };
  properties?: ConnectProperties;
  /** Milliseconds for the socket to open and CONNACK to arrive. Default 30000. */
  connectTimeout?: number;
  /** Milliseconds before reconnecting; 0 disables. Here the first window of a doubling, jittered backoff. Default 1000. */
  reconnectPeriod?: number;
  /** aviary-mqtt extension: the largest backoff window in ms. Default 30000. */
  reconnectMaxPeriod?: number;
  /** Subscribe again after a reconnect when the broker kept no session. Default true. */
  resubscribe?: boolean;
  /** Do not connect until `client.connect()`. */
  manualConnect?: boolean;
  /** With `connect(options)`: the broker, as parts of a URL (`mqtt`/`mqtts` mean `ws`/`wss`). */
  protocol?: "ws" | "wss" | "mqtt" | "mqtts" | "tcp" | "ssl" | "tls";
  host?: string;
  hostname?: string;
  port?: number;
  /** WebSocket path when the URL has none. Default "/mqtt". */
  path?: string;
  /** Called before every connection attempt; may return a new URL (e.g. with a fresh token). */
  transformWsUrl?: (url: string, options: IClientOptions, client: MqttClient) => string | Promise<string>;
  [other: string]: unknown;
}

export interface IClientPublishOptions {
  qos?: QoS;
  retain?: boolean;
  properties?: MessageProperties;
  [other: string]: unknown;
}

export interface IClientSubscribeOptions {
  qos?: QoS;
  /** No Local (MQTT 5). */
  nl?: boolean;
  /** Retain As Published (MQTT 5). */
  rap?: boolean;
  /** Retain Handling (MQTT 5). */
  rh?: 0 | 1 | 2;
  /** MQTT 5 SUBSCRIBE properties, for every topic of the call. */
  properties?: {
    /** Sent back with each matching message as `packet.properties.subscriptionIdentifier`. */
    subscriptionIdentifier?: number;
    userProperties?: UserProperties;
  };
  [other: string]: unknown;
}

export interface IClientUnsubscribeOptions {
  /** MQTT 5 UNSUBSCRIBE properties. */
  properties?: { userProperties?: UserProperties };
  [other: string]: unknown;
}

export interface IClientEndOptions {
  /** Milliseconds a non-forced end waits for operations in flight. Default 5000. */
  timeout?: number;
  [other: string]: unknown;
}

/** An AUTH packet (MQTT 5 enhanced authentication). */
export interface IAuthPacket {
  cmd?: "auth";
  reasonCode?: number;
  properties?: { authenticationMethod?: string; authenticationData?: Uint8Array; reasonString?: string };
}

export type ISubscriptionMap = Record<string, IClientSubscribeOptions | QoS>;
export type ISubscriptionGrant = Granted;

export type DoneCallback = (error?: Error) => void;
export type PacketCallback = (error?: Error, packet?: unknown) => void;
export type ClientSubscribeCallback = (error: Error | null, granted?: ISubscriptionGrant[]) => void;

export type OnMessageCallback = (topic: string, payload: MqttPayload, packet: IPublishPacket) => void;

export interface MqttClientEvents {
  connect: (connack: ConnackPacket) => void;
  reconnect: () => void;
  close: () => void;
  offline: () => void;
  error: (error: MqttError | Error) => void;
  end: () => void;
  message: OnMessageCallback;
  /** Only CONNACK and PUBLISH packets are reported. */
  packetreceive: (packet: ConnackPacket | IPublishPacket) => void;
}

export declare class MqttClient {
  private constructor();
  readonly options: IClientOptions;
  readonly connected: boolean;
  readonly reconnecting: boolean;
  readonly disconnecting: boolean;
  readonly disconnected: boolean;

  on<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  addListener<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  prependListener<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  once<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  prependOnceListener<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  off<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  removeListener<E extends keyof MqttClientEvents>(event: E, listener: MqttClientEvents[E]): this;
  removeAllListeners(event?: keyof MqttClientEvents): this;
  emit<E extends keyof MqttClientEvents>(event: E, ...args: Parameters<MqttClientEvents[E]>): boolean;
  listeners<E extends keyof MqttClientEvents>(event: E): MqttClientEvents[E][];
  listenerCount(event: keyof MqttClientEvents): number;
  eventNames(): (keyof MqttClientEvents)[];

  /**
   * MQTT 5 enhanced authentication, as in MQTT.js: override to answer the broker's AUTH
   * challenge with `callback(error, { properties: { authenticationData } })`.
   */
  handleAuth(packet: IAuthPacket, callback: (error?: Error, packet?: IAuthPacket) => void): void;

  /** Starts connecting; only needed with `manualConnect: true`. */
  connect(): this;

  publish(topic: string, message: string | Uint8Array | ArrayBuffer, callback?: PacketCallback): this;
  publish(topic: string, message: string | Uint8Array | ArrayBuffer, options?: IClientPublishOptions, callback?: PacketCallback): this;
  publishAsync(topic: string, message: string | Uint8Array | ArrayBuffer, options?: IClientPublishOptions): Promise<undefined>;

  subscribe(topic: string | string[] | ISubscriptionMap, callback?: ClientSubscribeCallback): this;
  subscribe(topic: string | string[] | ISubscriptionMap, options?: IClientSubscribeOptions, callback?: ClientSubscribeCallback): this;
  subscribeAsync(topic: string | string[] | ISubscriptionMap, options?: IClientSubscribeOptions): Promise<ISubscriptionGrant[]>;

  unsubscribe(topic: string | string[], callback?: PacketCallback): this;
  unsubscribe(topic: string | string[], options?: IClientUnsubscribeOptions, callback?: PacketCallback): this;
  unsubscribeAsync(topic: string | string[], options?: IClientUnsubscribeOptions): Promise<undefined>;

  /** Without `force`, in-flight QoS 1/2 publishes and subscriptions finish first. */
  end(callback?: DoneCallback): this;
  end(force?: boolean, callback?: DoneCallback): this;
  end(force?: boolean, options?: IClientEndOptions, callback?: DoneCallback): this;
  endAsync(force?: boolean, options?: IClientEndOptions): Promise<void>;
}

export { MqttClient as Client };

/** Returns a client at once; it connects (and reconnects) in the background. */
export declare function connect(brokerUrl: string, options?: IClientOptions): MqttClient;
export declare function connect(options: IClientOptions): MqttClient;

/** Resolves on the first `connect`; rejects on the first `error` (or, with `allowRetries` false, a failed first attempt). */
export declare function connectAsync(brokerUrl: string, options?: IClientOptions, allowRetries?: boolean): Promise<MqttClient>;
export declare function connectAsync(options: IClientOptions, allowRetries?: boolean): Promise<MqttClient>;

declare const mqtt: {
  connect: typeof connect;
  connectAsync: typeof connectAsync;
  MqttClient: typeof MqttClient;
  Client: typeof MqttClient;
};
export default mqtt;
