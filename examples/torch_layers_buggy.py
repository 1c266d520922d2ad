"""Layers in torch tensors in the EECS 498/598 style, with the mistakes students make.

Linear: the bias gradient averages over the batch. ReLU: right, but writes into dout.
Linear_ReLU: right, but makes its mask without device= (breaks on cuda). Conv: the
padding is cut off with ``pad:-pad``, which is empty for pad = 0. MaxPool: overlapping
windows overwrite each other's gradient. BatchNorm: dgamma forgets x_hat.
SpatialBatchNorm: a float32 buffer (torch.zeros's default dtype) in a float64 check.
"""

import torch


class Linear:
    @staticmethod
    def forward(x, w, b):
        return x.reshape(x.shape[0], -1).mm(w) + b, (x, w, b)

    @staticmethod
    def backward(dout, cache):
        x, w, b = cache
        dx = dout.mm(w.t()).reshape(x.shape)
        dw = x.reshape(x.shape[0], -1).t().mm(dout)
        db = dout.mean(dim=0)
        return dx, dw, db


class ReLU:
    @staticmethod
    def forward(x):
        return x.clamp(min=0), x

    @staticmethod
    def backward(dout, cache):
        x = cache
        dout[x < 0] = 0
        return dout


class Linear_ReLU:
    @staticmethod
    def forward(x, w, b):
        a = x.reshape(x.shape[0], -1).mm(w) + b
        return a.clamp(min=0), (x, w, a)

    @staticmethod
    def backward(dout, cache):
        x, w, a = cache
        mask = torch.zeros(*a.shape, dtype=a.dtype)
        mask[a > 0] = 1
        da = dout * mask
        return da.mm(w.t()).reshape(x.shape), x.reshape(x.shape[0], -1).t().mm(da), da.sum(dim=0)


class Conv:
    @staticmethod
    def forward(x, w, b, conv_param):
        stride, pad = conv_param["stride"], conv_param["pad"]
        n, f = x.shape[0], w.shape[0]
        hh, ww = w.shape[2:]
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        h_out = 1 + (xp.shape[2] - hh) // stride
        w_out = 1 + (xp.shape[3] - ww) // stride
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
        n, f = x.shape[0], w.shape[0]
        hh, ww = w.shape[2:]
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dxp, dw = torch.zeros_like(xp), torch.zeros_like(w)
        for i in range(dout.shape[2]):
            for j in range(dout.shape[3]):
                rows, cols = slice(i * stride, i * stride + hh), slice(j * stride, j * stride + ww)
                g = dout[:, :, i, j]
                dw += g.t().mm(xp[:, :, rows, cols].reshape(n, -1)).reshape(w.shape)
                dxp[:, :, rows, cols] += g.mm(w.reshape(f, -1)).reshape(n, *w.shape[1:])
        return dxp[:, :, pad:-pad, pad:-pad], dw, dout.sum(dim=(0, 2, 3))


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
                dx[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw] = grad.reshape(window.shape)
        return dx


class BatchNorm:
    @staticmethod
    def forward(x, gamma, beta, bn_param):
        eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
        d = x.shape[1]
        running_mean = bn_param.get("running_mean", torch.zeros(d, dtype=x.dtype, device=x.device))
        running_var = bn_param.get("running_var", torch.zeros(d, dtype=x.dtype, device=x.device))
        cache = None
        if bn_param["mode"] == "train":
            mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
            std = torch.sqrt(var + eps)
            x_hat = (x - mean) / std
            out = gamma * x_hat + beta
            running_mean = momentum * running_mean + (1 - momentum) * mean
            running_var = momentum * running_var + (1 - momentum) * var
            cache = (x_hat, gamma, std)
        else:
            out = gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
        return out, cache

    @staticmethod
    def backward(dout, cache):
        x_hat, gamma, std = cache
        n = dout.shape[0]
        dx_hat = dout * gamma
        dx = (n * dx_hat - dx_hat.sum(dim=0) - x_hat * (dx_hat * x_hat).sum(dim=0)) / (n * std)
        return dx, dout.sum(dim=0), dout.sum(dim=0)


class SpatialBatchNorm:
    @staticmethod
    def forward(x, gamma, beta, bn_param):
        n, c, h, w = x.shape
        flat = x.permute(0, 2, 3, 1).reshape(-1, c)
        x_hat = torch.zeros(flat.shape, device=x.device)  # float32: torch's default dtype
        out, cache = BatchNorm.forward(flat, gamma, beta, bn_param)
        if cache is not None:
            x_hat[:] = cache[0]
            cache = (x_hat, *cache[1:])
        return out.reshape(n, h, w, c).permute(0, 3, 1, 2), cache

    @staticmethod
    def backward(dout, cache):
        x_hat, gamma, std = cache
        n, c, h, w = dout.shape
        m = n * h * w
        flat = dout.permute(0, 2, 3, 1).reshape(-1, c)
        dx_hat = flat * gamma
        dx = (m * dx_hat - dx_hat.sum(dim=0) - x_hat * (dx_hat * x_hat).sum(dim=0)) / (m * std)
        dgamma = (flat * x_hat).sum(dim=0)
        return dx.reshape(n, h, w, c).permute(0, 3, 1, 2), dgamma, flat.sum(dim=0)
