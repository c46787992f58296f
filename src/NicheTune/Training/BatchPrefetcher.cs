using System.Threading.Channels;
using TorchSharp;

namespace NicheTune.Training;

/// <summary>
/// Collates batches on a background task into a bounded channel, so the training loop never waits on
/// tokenisation or tensor creation. Batches not taken are disposed when the prefetcher is.
/// </summary>
internal sealed class BatchPrefetcher<TExample, TBatch> : IDisposable
    where TBatch : ITrainingBatch
{
    private readonly Channel<TBatch> _channel;
    private readonly CancellationTokenSource _cancel;
    private readonly Task _producer;

    public BatchPrefetcher(
        IReadOnlyList<TExample> examples,
        int[] order,
        int batchSize,
        int firstBatch,
        ICollator<TExample, TBatch> collator,
        torch.Device device,
        int capacity,
        CancellationToken cancellationToken)
    {
        _channel = Channel.CreateBounded<TBatch>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            SingleWriter = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        CancellationToken token = _cancel.Token;
        _producer = Task.Run(() => Produce(examples, order, batchSize, firstBatch, collator, device, token), CancellationToken.None);
    }

    public static int BatchCount(int exampleCount, int batchSize) => (exampleCount + batchSize - 1) / batchSize;

    /// <summary>Takes the next batch, waiting for the producer when it is behind; false at the end of the data.</summary>
    public bool TryTake(out TBatch batch)
    {
        ChannelReader<TBatch> reader = _channel.Reader;
        while (true)
        {
            if (reader.TryRead(out batch!))
            {
                return true;
            }

            ValueTask<bool> wait = reader.WaitToReadAsync();
            bool more = wait.IsCompletedSuccessfully ? wait.Result : wait.AsTask().GetAwaiter().GetResult();
            if (!more)
            {
                // Surfaces a collator exception (the channel was completed with it).
                reader.Completion.GetAwaiter().GetResult();
                batch = default!;
                return false;
            }
        }
    }

    private async Task Produce(IReadOnlyList<TExample> examples, int[] order, int batchSize, int firstBatch, ICollator<TExample, TBatch> collator, torch.Device device, CancellationToken token)
    {
        Exception? failure = null;
        try
        {
            int count = BatchCount(order.Length, batchSize);
            for (int b = firstBatch; b < count; b++)
            {
                token.ThrowIfCancellationRequested();
                int start = b * batchSize;
                int size = Math.Min(batchSize, order.Length - start);
                var items = new TExample[size];
                for (int i = 0; i < size; i++)
                {
                    items[i] = examples[order[start + i]];
                }

                TBatch batch = collator.Collate(items);
                try
                {
                    batch.MoveTo(device);
                    await _channel.Writer.WriteAsync(batch, token).ConfigureAwait(false);
                }
                catch
                {
                    batch.Dispose();
                    throw;
                }
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            _channel.Writer.TryComplete(failure);
        }
    }

    public void Dispose()
    {
        _cancel.Cancel();
        try
        {
            _producer.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }

        while (_channel.Reader.TryRead(out TBatch? leftover))
        {
            leftover.Dispose();
        }

        _cancel.Dispose();
    }
}
