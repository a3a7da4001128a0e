// A small EventEmitter with the Node/MQTT.js method names (on, once, off, removeListener, ...),
// so compat clients work the same in browsers, which have no `events` module, and in Node.
// Events are emitted from inside the client's socket callbacks, where a throw would be
// swallowed (and stop the client's own bookkeeping). So an `error` with no listener is
// dropped rather than thrown, and a listener that throws does not stop the others: its
// exception is rethrown on its own, as uncaught, so it still shows up as with MQTT.js.

export class EventEmitter {
  #listeners = new Map();

  /** Called after listeners of `event` were added or removed (the client tunes forwarding). */
  _listenersChanged(_event) {}

  on(event, listener) {
    return this.#add(event, listener, false, false);
  }

  addListener(event, listener) {
    return this.#add(event, listener, false, false);
  }

  prependListener(event, listener) {
    return this.#add(event, listener, false, true);
  }

  once(event, listener) {
    return this.#add(event, listener, true, false);
  }

  prependOnceListener(event, listener) {
    return this.#add(event, listener, true, true);
  }

  off(event, listener) {
    const list = this.#listeners.get(event);
    if (!list) return this;
    // Like Node: the most recently added matching listener goes.
    for (let i = list.length - 1; i >= 0; i--) {
      if (list[i].f === listener) {
        this.#set(event, [...list.slice(0, i), ...list.slice(i + 1)]);
        break;
      }
    }
    return this;
  }

  removeListener(event, listener) {
    return this.off(event, listener);
  }

  removeAllListeners(event) {
    const events = event === undefined ? [...this.#listeners.keys()] : [event];
    for (const e of events) this.#set(e, []);
    return this;
  }

  listeners(event) {
    return (this.#listeners.get(event) ?? []).map((l) => l.f);
  }

  listenerCount(event) {
    return this.#listeners.get(event)?.length ?? 0;
  }

  eventNames() {
    return [...this.#listeners.keys()];
  }

  /** Calls the listeners of `event` in order; returns whether there were any. */
  emit(event, ...args) {
    const list = this.#listeners.get(event);
    if (!list || list.length === 0) return false;
    if (list.some((l) => l.once)) this.#set(event, list.filter((l) => !l.once));
    // `list` is a snapshot (every change makes a new array): listeners may add or remove
    // listeners while being called.
    for (const l of list) {
      try {
        l.f.apply(this, args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return true;
  }

  #add(event, f, once, prepend) {
    if (typeof f !== "function") throw new TypeError("the listener must be a function");
    const list = this.#listeners.get(event) ?? [];
    const entry = { f, once };
    this.#set(event, prepend ? [entry, ...list] : [...list, entry]);
    return this;
  }

  #set(event, list) {
    if (list.length === 0) this.#listeners.delete(event);
    else this.#listeners.set(event, list);
    this._listenersChanged(event);
  }
}
