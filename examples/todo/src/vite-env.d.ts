/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** tandem-server's address, e.g. `ws://127.0.0.1:8787` (default). */
  readonly VITE_TANDEM_URL?: string
  /** The workspace holding the todos (default `todo`). */
  readonly VITE_TANDEM_WORKSPACE?: string
  /** A development JWT (scripts/start.sh mints one). A real app fetches it from its backend. */
  readonly VITE_TANDEM_TOKEN?: string
}
