// The Express 4 and 5 installs under their alias names share the types of `express`.
declare module 'express4' {
  export { default } from 'express';
}
declare module 'express5' {
  export { default } from 'express';
}
