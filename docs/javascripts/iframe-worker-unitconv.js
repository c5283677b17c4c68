/*
 * Search for the docs site opened from disk (site/index.html, a file:// URL).
 *
 * Browsers refuse to start a Web Worker from a file:// URL, and the theme runs its
 * search index in a worker. On file:// pages only, this script replaces `Worker` with
 * a small stand-in that runs the worker's script in a hidden iframe of the same origin
 * and passes messages both ways, so search works from disk without a server or a
 * network connection. Served over http(s), it does nothing.
 *
 * Written for unitconv's docs; mkdocs.yml lists it under `extra.polyfills` (its name
 * contains "iframe-worker", so the theme's offline plugin adds no shim of its own).
 */
(function () {
  "use strict";
  if (location.protocol !== "file:" || typeof window === "undefined") {
    return;
  }

  var registry = [];

  function FrameWorker(url) {
    var target = typeof EventTarget === "function" ? new EventTarget() : document.createDocumentFragment();
    var self = this;
    this._target = target;
    this._pending = [];
    this._ready = false;
    this.onmessage = null;
    this.onerror = null;
    this._id = registry.push(this) - 1;

    var source = new URL(String(url), location.href).href;
    var frame = document.createElement("iframe");
    frame.hidden = true;
    frame.setAttribute("aria-hidden", "true");
    frame.setAttribute("tabindex", "-1");
    // The first script connects the frame to this object before the worker's script
    // runs: the worker's global postMessage sends to the page, importScripts loads
    // scripts in order (returning a Promise, which the theme's worker awaits).
    frame.srcdoc =
      "<!doctype html><html><head><script>" +
      "(function(){var host=parent.__unitconvFrameWorkers[" + this._id + "];" +
      "window.postMessage=function(data){host._fromFrame(data);};" +
      "window.importScripts=function(){var urls=[].slice.call(arguments);" +
      "return urls.reduce(function(done,src){return done.then(function(){" +
      "return new Promise(function(ok,fail){var s=document.createElement('script');" +
      "s.src=new URL(src," + JSON.stringify(source) + ").href;s.onload=ok;s.onerror=fail;" +
      "document.head.appendChild(s);});});},Promise.resolve());};" +
      "window.addEventListener('error',function(ev){host._error(ev);});})();" +
      "</script><script src=" + JSON.stringify(source) + "></script>" +
      "<script>parent.__unitconvFrameWorkers[" + this._id + "]._start();</script>" +
      "</head><body></body></html>";
    this._frame = frame;
    var attach = function () {
      document.body.appendChild(frame);
    };
    if (document.body) {
      attach();
    } else {
      document.addEventListener("DOMContentLoaded", attach);
    }
    this._fromFrame = function (data) {
      var event = new MessageEvent("message", { data: structuredClone(data) });
      if (typeof self.onmessage === "function") {
        self.onmessage(event);
      }
      target.dispatchEvent(event);
    };
    this._error = function (ev) {
      var event = new ErrorEvent("error", { message: ev.message, error: ev.error });
      if (typeof self.onerror === "function") {
        self.onerror(event);
      }
      target.dispatchEvent(event);
    };
  }

  FrameWorker.prototype._start = function () {
    this._ready = true;
    var pending = this._pending;
    this._pending = [];
    for (var i = 0; i < pending.length; i++) {
      this._deliver(pending[i]);
    }
  };

  FrameWorker.prototype._deliver = function (data) {
    var win = this._frame.contentWindow;
    win.dispatchEvent(new win.MessageEvent("message", { data: structuredClone(data) }));
  };

  FrameWorker.prototype.postMessage = function (data) {
    if (this._ready) {
      this._deliver(data);
    } else {
      this._pending.push(data);
    }
  };

  FrameWorker.prototype.addEventListener = function (type, listener, options) {
    this._target.addEventListener(type, listener, options);
  };

  FrameWorker.prototype.removeEventListener = function (type, listener, options) {
    this._target.removeEventListener(type, listener, options);
  };

  FrameWorker.prototype.dispatchEvent = function (event) {
    return this._target.dispatchEvent(event);
  };

  FrameWorker.prototype.terminate = function () {
    if (this._frame.parentNode) {
      this._frame.parentNode.removeChild(this._frame);
    }
    this._ready = false;
  };

  window.__unitconvFrameWorkers = registry;
  window.Worker = FrameWorker;
})();
