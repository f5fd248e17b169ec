import type { DpopKeyPair } from '../../src/client/index.js';
import type { KeyPairStorage } from './dpop-key-store.js';

/** The database and store that hold the key; one record, replaced only when it is unusable. */
export const DPOP_KEY_DATABASE = 'bank-app';
export const DPOP_KEY_STORE = 'dpop-keys';
export const DPOP_KEY_RECORD = 'current';

/**
 * Key pair storage in IndexedDB. A CryptoKey is stored by structured clone, which keeps it non-extractable
 * (WebCrypto section "Structured serialization"): the database holds a handle the browser can sign with,
 * never key bytes a script could read.
 */
export function indexedDbKeyPairStorage(factory: IDBFactory): KeyPairStorage {
  return {
    keepOrReplace: async (fresh, usable) => {
      const db = await openDatabase(factory);
      try {
        return await new Promise<DpopKeyPair>((resolve, reject) => {
          // One readwrite transaction: read, and write only if needed, with no await in between (an
          // IndexedDB transaction commits as soon as it has no pending request).
          const transaction = db.transaction(DPOP_KEY_STORE, 'readwrite');
          const store = transaction.objectStore(DPOP_KEY_STORE);
          let kept = fresh;
          const read = store.get(DPOP_KEY_RECORD);
          read.onsuccess = () => {
            if (usable(read.result)) kept = read.result;
            else store.put(fresh, DPOP_KEY_RECORD);
          };
          transaction.oncomplete = () => resolve(kept);
          transaction.onerror = () => reject(transaction.error ?? new Error('IndexedDB transaction failed'));
          transaction.onabort = () => reject(transaction.error ?? new Error('IndexedDB transaction aborted'));
        });
      } finally {
        db.close();
      }
    },
  };
}

function openDatabase(factory: IDBFactory): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = factory.open(DPOP_KEY_DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(DPOP_KEY_STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB cannot be opened'));
    request.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}
