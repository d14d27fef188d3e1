// The Koa 2 and 3 installs under their alias names share the types of `koa`.
declare module 'koa2' {
  import Koa from 'koa';
  export = Koa;
}
declare module 'koa3' {
  import Koa from 'koa';
  export = Koa;
}
