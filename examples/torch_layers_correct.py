"""Layers in torch tensors, written the way EECS 498/598 asks for them: classes with static
forward/backward methods, every tensor made on the inputs' device and in their dtype."""

import torch


class Linear:
    @staticmethod
    def forward(x, w, b):
        out = x.reshape(x.shape[0], -1).mm(w) + b
        return out, (x, w, b)

    @staticmethod
    def backward(dout, cache):
        x, w, b = cache
        dx = dout.mm(w.t()).reshape(x.shape)
        dw = x.reshape(x.shape[0], -1).t().mm(dout)
        db = dout.sum(dim=0)
        return dx, dw, db


class ReLU:
    @staticmethod
    def forward(x):
        return x.clamp(min=0), x

    @staticmethod
    def backward(dout, cache):
        x = cache
        return dout * (x > 0)


class Linear_ReLU:
    @staticmethod
    def forward(x, w, b):
        a, fc_cache = Linear.forward(x, w, b)
        out, relu_cache = ReLU.forward(a)
        return out, (fc_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        fc_cache, relu_cache = cache
        return Linear.backward(ReLU.backward(dout, relu_cache), fc_cache)


class Dropout:
    @staticmethod
    def forward(x, dropout_param):
        """p: we drop each neuron output with probability p."""
        p, mode = dropout_param["p"], dropout_param["mode"]
        if "seed" in dropout_param:
            torch.manual_seed(dropout_param["seed"])
        mask = None
        if mode == "train":
            mask = (torch.rand(x.shape, dtype=x.dtype, device=x.device) >= p) / (1 - p)
            out = x * mask
        else:
            out = x
        return out, (dropout_param, mask)

    @staticmethod
    def backward(dout, cache):
        dropout_param, mask = cache
        return dout * mask if dropout_param["mode"] == "train" else dout


class Conv:
    @staticmethod
    def forward(x, w, b, conv_param):
        stride, pad = conv_param["stride"], conv_param["pad"]
        n, _, height, width = x.shape
        f, _, hh, ww = w.shape
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        h_out = 1 + (height + 2 * pad - hh) // stride
        w_out = 1 + (width + 2 * pad - ww) // stride
        out = torch.zeros(n, f, h_out, w_out, dtype=x.dtype, device=x.device)
        for i in range(h_out):
            for j in range(w_out):
                window = xp[:, :, i * stride:i * stride + hh, j * stride:j * stride + ww]
                out[:, :, i, j] = window.reshape(n, -1).mm(w.reshape(f, -1).t()) + b
        return out, (x, w, b, conv_param)

    @staticmethod
    def backward(dout, cache):
        x, w, b, conv_param = cache
        stride, pad = conv_param["stride"], conv_param["pad"]
        n = x.shape[0]
        f, _, hh, ww = w.shape
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dxp = torch.zeros_like(xp)
        dw = torch.zeros_like(w)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows = slice(i * stride, i * stride + hh)
                cols = slice(j * stride, j * stride + ww)
                g = dout[:, :, i, j]
                dw += g.t().mm(xp[:, :, rows, cols].reshape(n, -1)).reshape(w.shape)
                dxp[:, :, rows, cols] += g.mm(w.reshape(f, -1)).reshape(n, *w.shape[1:])
        dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]
        return dx, dw, dout.sum(dim=(0, 2, 3))


class MaxPool:
    @staticmethod
    def forward(x, pool_param):
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        n, c, height, width = x.shape
        h_out, w_out = 1 + (height - ph) // stride, 1 + (width - pw) // stride
        out = torch.zeros(n, c, h_out, w_out, dtype=x.dtype, device=x.device)
        for i in range(h_out):
            for j in range(w_out):
                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
                out[:, :, i, j] = window.reshape(n, c, -1).max(dim=2).values
        return out, (x, pool_param)

    @staticmethod
    def backward(dout, cache):
        x, pool_param = cache
        ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
        n, c = x.shape[:2]
        dx = torch.zeros_like(x)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
                flat = window.reshape(n, c, -1)
                mask = flat == flat.max(dim=2, keepdim=True).values
                grad = mask * dout[:, :, i, j].reshape(n, c, 1)
                dx[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw] += grad.reshape(window.shape)
        return dx


class BatchNorm:
    @staticmethod
    def forward(x, gamma, beta, bn_param):
        mode = bn_param["mode"]
        eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
        d = x.shape[1]
        running_mean = bn_param.get("running_mean", torch.zeros(d, dtype=x.dtype, device=x.device))
        running_var = bn_param.get("running_var", torch.zeros(d, dtype=x.dtype, device=x.device))
        cache = None
        if mode == "train":
            mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
            x_hat = (x - mean) / torch.sqrt(var + eps)
            out = gamma * x_hat + beta
            running_mean = momentum * running_mean + (1 - momentum) * mean
            running_var = momentum * running_var + (1 - momentum) * var
            cache = (x_hat, gamma, torch.sqrt(var + eps))
        else:
            out = gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta
        bn_param["running_mean"] = running_mean.detach()
        bn_param["running_var"] = running_var.detach()
        return out, cache

    @staticmethod
    def backward(dout, cache):
        x_hat, gamma, std = cache
        n = dout.shape[0]
        dbeta = dout.sum(dim=0)
        dgamma = (dout * x_hat).sum(dim=0)
        dx_hat = dout * gamma
        dvar = (dx_hat * x_hat * -0.5 / std ** 2).sum(dim=0)
        dmean = (-dx_hat / std).sum(dim=0) - 2 * dvar * (x_hat * std).mean(dim=0)
        dx = dx_hat / std + 2 * dvar * x_hat * std / n + dmean / n
        return dx, dgamma, dbeta

    @staticmethod
    def backward_alt(dout, cache):
        x_hat, gamma, std = cache
        n = dout.shape[0]
        dbeta = dout.sum(dim=0)
        dgamma = (dout * x_hat).sum(dim=0)
        dx_hat = dout * gamma
        dx = (n * dx_hat - dx_hat.sum(dim=0) - x_hat * (dx_hat * x_hat).sum(dim=0)) / (n * std)
        return dx, dgamma, dbeta


class SpatialBatchNorm:
    @staticmethod
    def forward(x, gamma, beta, bn_param):
        n, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, c)
        out, cache = BatchNorm.forward(flat, gamma, beta, bn_param)
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2), cache

    @staticmethod
    def backward(dout, cache):
        n, c, h, w = dout.shape
        flat = dout.permute(0, 2, 3, 1).reshape(-1, c)
        dx, dgamma, dbeta = BatchNorm.backward_alt(flat, cache)
        return dx.reshape(n, h, w, c).permute(0, 3, 1, 2), dgamma, dbeta


class Linear_BatchNorm_ReLU:
    @staticmethod
    def forward(x, w, b, gamma, beta, bn_param):
        a, fc_cache = Linear.forward(x, w, b)
        s, bn_cache = BatchNorm.forward(a, gamma, beta, bn_param)
        out, relu_cache = ReLU.forward(s)
        return out, (fc_cache, bn_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        fc_cache, bn_cache, relu_cache = cache
        ds = ReLU.backward(dout, relu_cache)
        da, dgamma, dbeta = BatchNorm.backward(ds, bn_cache)
        dx, dw, db = Linear.backward(da, fc_cache)
        return dx, dw, db, dgamma, dbeta


class Conv_BatchNorm_ReLU:
    @staticmethod
    def forward(x, w, b, gamma, beta, conv_param, bn_param):
        a, conv_cache = Conv.forward(x, w, b, conv_param)
        s, bn_cache = SpatialBatchNorm.forward(a, gamma, beta, bn_param)
        out, relu_cache = ReLU.forward(s)
        return out, (conv_cache, bn_cache, relu_cache)

    @staticmethod
    def backward(dout, cache):
        conv_cache, bn_cache, relu_cache = cache
        ds = ReLU.backward(dout, relu_cache)
        da, dgamma, dbeta = SpatialBatchNorm.backward(ds, bn_cache)
        dx, dw, db = Conv.backward(da, conv_cache)
        return dx, dw, db, dgamma, dbeta


class Conv_BatchNorm_ReLU_Pool:
    @staticmethod
    def forward(x, w, b, gamma, beta, conv_param, bn_param, pool_param):
        s, inner_cache = Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, bn_param)
        out, pool_cache = MaxPool.forward(s, pool_param)
        return out, (inner_cache, pool_cache)

    @staticmethod
    def backward(dout, cache):
        inner_cache, pool_cache = cache
        return Conv_BatchNorm_ReLU.backward(MaxPool.backward(dout, pool_cache), inner_cache)
